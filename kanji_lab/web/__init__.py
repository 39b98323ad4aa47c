"""``python -m kanji_lab.web run_dir=<run> out=site [serve=true]``: a static web page that
recognises characters as they are drawn, from a run's exported (INT8) ONNX model.

:mod:`kanji_lab.web.site` writes the site (page, ONNX Runtime Web's WASM files, the model, its
labels and preprocessing settings); :mod:`kanji_lab.web.npm` obtains ONNX Runtime Web once with
npm; :mod:`kanji_lab.web.serve` serves a folder on localhost. The page's JavaScript
(``static/``) turns strokes into the model input exactly as
:func:`kanji_lab.data.normalize.strokes_input` does (``static/normalize.js``: the same pixels
Pillow sets, with the settings from the model's metadata, none written into the JavaScript).

The page: a square pad (pointer events: mouse, touch and pen), recognition after every stroke, the
top 10 candidates with their probabilities (click or Enter copies one), undo (button, Ctrl+Z) and
clear (button, Escape), the model's name, classes and size, and the time each recognition took. If
the model cannot load, the page says why in place of the ready line. Candidates are shown in the
visitor's own Japanese font; the site ships none. The site works from any static web server, not
from ``file://`` (browsers refuse to fetch the model and the WASM binary there); the runtime runs
on one thread, so no cross-origin isolation headers are needed.

Embedding: the page sets ``window.kanjiLab`` (``ready``, ``recognize(strokes, k)``,
``lastResult``, ``lastTiming``, ``clear()``, ``undo()``, ``strokes``, ``preprocess(strokes)``,
``model``, ``priorWeight``, ``readyMs``, ``loadMs``; the contract is at the top of
``static/app.js``). Serve the site with your pages and put it in an
``<iframe src="site/index.html">``; from the same origin,
``frame.contentWindow.kanjiLab.recognize(...)`` recognises strokes your page collected. Your own
``index.html`` works too if it keeps the ids ``pad``, ``candidates``, ``status``, ``timing``,
``copied``, ``model-info``, ``undo`` and ``clear``; the candidates are the ``<li>`` items of
``<ol id="candidates">``, each holding its character as text (``data-prob``: its probability), and
the list's ``data-strokes`` says which drawing it shows.
"""

from kanji_lab.errors import UserError


class WebError(UserError):
    """The site cannot be built or served as asked; the message says what to do."""
