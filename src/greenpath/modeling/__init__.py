"""greenpath.modeling"""
