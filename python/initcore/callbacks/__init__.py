"""Keras-style training callbacks for ``Sequential.fit``.

A callback receives ``set_model(model)`` and then, during ``fit``, the hooks
``on_train_begin(logs)``, ``on_epoch_begin(epoch, logs)``, ``on_batch_begin(batch, logs)``,
``on_batch_end(batch, logs)`` (``logs``: ``loss``, ``size``, ``accuracy``), ``on_epoch_end(epoch,
logs)`` (``logs``: ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``, ``lr``, ``seconds``) and
``on_train_end(logs)``. Epochs are numbered from 0 and continue across ``fit`` calls and a
save/load (``model.epochs_completed``); messages print them from 1, as Keras does. A callback
stops training by setting ``model.stop_training = True``; it reaches the optimizer as
``model.optimizer``. ``fit``'s parameters (``epochs``, ``initial_epoch``, ``steps``, ``samples``,
``batch_size``) are in ``callback.params`` (from ``set_params``, else ``model.fit_params``).

Callbacks whose progress matters for resuming (schedules, :class:`EarlyStopping`,
:class:`ModelCheckpoint`) have ``get_state()`` / ``set_state()``; ``model.save`` stores them.

Here (one concept per module: ``base``, ``progress``, ``monitor``, ``csv_logger``):
:class:`Callback`, :class:`CallbackList`, :class:`History`, :class:`ProgressBar`,
:class:`EarlyStopping`, :class:`ModelCheckpoint`, :class:`TerminateOnNaN`, :class:`CSVLogger`,
:class:`LambdaCallback`; learning-rate schedules are in :mod:`initcore.schedules`.
"""

from .base import Callback, CallbackList, History, LambdaCallback
from .csv_logger import CSVLogger
from .monitor import EarlyStopping, ModelCheckpoint, TerminateOnNaN
from .progress import ProgressBar, format_logs, wrap_entries

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgressBar",
    "EarlyStopping",
    "ModelCheckpoint",
    "TerminateOnNaN",
    "CSVLogger",
    "LambdaCallback",
    "format_logs",
    "wrap_entries",
]
