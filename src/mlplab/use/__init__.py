"""Using a trained model: a checkpoint read back (trained.py), evaluated (evaluation.py), asked about images
(inference.py), exported (export.py), or drawn on in the browser (pad.py, pad.html).

Who opens it: whoever uses a checkpoint; nothing here trains.
"""
