# Report: one job per study draws every figure of that study (scripts/figures.py ->
# greenpath.report.build). `snakemake --report results/report.html` then collects the
# outputs marked with report() below, with the captions in workflow/report/.


rule report_figures:
    input:
        unpack(report_inputs),
    output:
        headline=_report_flag(
            f"{REPORT_DIR}/headline.html",
            "headline.rst",
            "1. headline: what each strategy saved",
            "headline",
            False,
        ),
        per_dataset=_report_flag(
            f"{REPORT_DIR}/per_dataset.html",
            "per_dataset.rst",
            "2. each strategy on each dataset",
            "strategies x datasets",
            False,
        ),
        curves=_report_flag(
            f"{REPORT_DIR}/learning_curves",
            "learning_curves.rst",
            "3. learning curves",
            "validation accuracy vs epoch",
            True,
        ),
        energy_accuracy=_report_flag(
            f"{REPORT_DIR}/energy_accuracy",
            "energy_accuracy.rst",
            "4. energy vs accuracy",
            "cumulative energy vs accuracy",
            True,
        ),
        energy_breakdown=_report_flag(
            f"{REPORT_DIR}/energy_breakdown",
            "energy_breakdown.rst",
            "5. energy breakdown",
            "energy by method and component",
            True,
        ),
        predictions=_report_flag(
            f"{REPORT_DIR}/predictions.png",
            "predictions.rst",
            "6. predictions",
            "predicted vs actual",
            False,
        ),
        summary=_report_flag(
            f"{REPORT_DIR}/summary.html",
            "summary.rst",
            "7. strategies and predictors next to the paper",
            "summary table",
            False,
        ),
        index=f"{REPORT_DIR}/index.html",
    log:
        f"{RESULTS}/{{study}}/logs/report.log",
    wildcard_constraints:
        study="[A-Za-z0-9_.-]+",
    localrule: True
    conda:
        "../../envs/greenpath.yaml"
    params:
        out_dir=lambda wc: REPORT_DIR.format(study=wc.study),
        title=lambda wc: (config.get("report") or {}).get("title"),
        datasets=lambda wc: DATASETS if wc.study == config["study"] else None,
    script:
        "../../scripts/figures.py"
