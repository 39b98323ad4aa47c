"""Deployment: ONNX export with parity checks, INT8 (ONNX Runtime QDQ), bitsandbytes 4/8-bit
weights, and the pipeline that writes a run's deployable files.

- :mod:`kanji_lab.deploy.weights`: ``model.safetensors``, a model file that rebuilds its network
  without training code or KanjiVG.
- :mod:`kanji_lab.deploy.onnx_export`: ``model.onnx`` (labels and preprocessing in its metadata),
  checked against PyTorch.
- :mod:`kanji_lab.deploy.int8`: ``model.int8.onnx``, static QDQ quantization calibrated on
  training batches, an LSTM's weights int8 through dynamic quantization.
- :mod:`kanji_lab.deploy.bnb`: ``nn.Linear`` -> bitsandbytes NF4 / FP4 / LLM.int8 layers, saved as
  their packed weights and quantization state.
- :mod:`kanji_lab.deploy.pipeline`: all of the above for one set of weights.
"""
