"""Training by GD, SGD or Adam in any precision, recording exact piece counts.

The public API (``_train``) plans a batch of nets and runs the kernels: ``_train_cpu``
(the run loop, evaluation, parameter layouts) with its passes in ``_train_passes`` and
its matrix products in ``_gemm_cpu``, or their CUDA twin ``_train_cuda``.
``_train_types`` holds :class:`TrainConfig`, :class:`TrainResult` and the layout of a
net as one parameter vector.

Examples
--------
>>> from pieces import sawtooth
>>> from pieces.train import TrainConfig, train
>>> res = train(sawtooth(2), "sawtooth", TrainConfig(steps=10, record_every=10))
>>> res.history["step"].tolist()
[0, 10]
"""

from ._train import (HISTORY_DTYPE, SAMPLINGS, SCHEDULES, TrainConfig, TrainResult, evaluate_batch, history_to_csv,
                     net_to_theta, theta_to_net, train, train_batch, training_data)

__all__ = [
    "TrainConfig", "TrainResult", "train", "train_batch", "HISTORY_DTYPE", "SCHEDULES", "SAMPLINGS",
    "history_to_csv", "net_to_theta", "theta_to_net", "training_data", "evaluate_batch",
]
