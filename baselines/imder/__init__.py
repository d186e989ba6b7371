"""IMDer: the method (method.py), its MulT backbone and refinement net (backbone.py), its score U-Nets and VE-SDE (score_unet.py)."""
