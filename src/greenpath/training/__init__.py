"""greenpath.training"""
