"""``python -m kanji_lab.web run_dir=<run> out=site [serve=true]``: a static web page that
recognises characters as they are drawn, from a run's exported (INT8) ONNX model.

:mod:`kanji_lab.web.site` writes the site (page, ONNX Runtime Web's WASM files, the model, its
labels and preprocessing settings); :mod:`kanji_lab.web.npm` obtains ONNX Runtime Web once with
npm; :mod:`kanji_lab.web.serve` serves a folder on localhost. The page's JavaScript
(``static/``) turns strokes into the model input exactly as
:func:`kanji_lab.data.normalize.strokes_input` does.
"""

from kanji_lab.errors import UserError


class WebError(UserError):
    """The site cannot be built or served as asked; the message says what to do."""
