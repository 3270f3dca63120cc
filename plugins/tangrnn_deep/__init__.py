"""Deep recurrent language models: stacked layers, deep input, deep transition (DT, DT(S)) and deep output
functions over an rnn, gru or lstm cell (Pascanu et al., 2013, "How to Construct Deep Recurrent Neural Networks").

Registered in the ``tangrnn.architectures`` entry-point group as ``deep``.
"""

from tangrnn_deep.model import DeepRNN
from tangrnn_deep.transition import DeepTransitionLayer

__all__ = ["DeepRNN", "DeepTransitionLayer"]
