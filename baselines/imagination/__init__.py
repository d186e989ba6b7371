"""The embedding-imagination family: shared encoders and autoencoders (base.py), and the three methods
built on them: MMIN's AE baseline (ae.py), the cascaded residual autoencoder (cra.py) and MMIN (mmin.py)."""
