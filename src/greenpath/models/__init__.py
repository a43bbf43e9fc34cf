"""greenpath.models"""
