"""Research runners: the measurements behind docs/ (paper claims, the 21-concept tables, windows).

They import the product (clear_core, analysis); the product never imports them.
"""
