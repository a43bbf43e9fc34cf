"""greenpath.energy"""
