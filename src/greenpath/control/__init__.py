"""greenpath.control"""
