"""tangrnn's built-in recurrent language models on torch's fused kernels: vanilla RNN, LSTM and GRU.

Registered in the ``tangrnn.architectures`` entry-point group as ``rnn``, ``lstm`` and ``gru``.
"""

from tangrnn_recurrent.fused import GRU, LSTM, RNN, FusedRecurrentLM

__all__ = ["RNN", "LSTM", "GRU", "FusedRecurrentLM"]
