"""apmpo-ray: asynchronous actor-learner RLVR with APMPO on Ray."""
__version__ = "0.1.0"
