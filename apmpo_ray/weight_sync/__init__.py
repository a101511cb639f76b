"""Weight sync from the learner's rank 0 to the vLLM generators (gloo on CPU, NCCL on GPU)."""
from .broadcaster import WeightBroadcaster, WeightSyncError

__all__ = ["WeightBroadcaster", "WeightSyncError"]
