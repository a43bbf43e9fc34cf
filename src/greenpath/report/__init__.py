"""greenpath.report"""
