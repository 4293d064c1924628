"""patients"""
