"""greenpath.data"""
