"""greenpath.paths"""
