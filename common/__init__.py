"""What training and the app share, without torch: file helpers, paths and the latent atlas format.

    common.fileio        atomic writes, file digests
    common.paths         where the shipped models live; checkpoint -> atlas file name
    common.atlas_format  the Atlas dataclass, its versioned .npz format, and its validation

Dependencies point one way: training/ and explorer/ import this package; it imports neither.
"""
