"""``gan-serve``: an exported generator behind HTTP, speaking the Open Inference Protocol (KServe v2)
as Triton speaks it, plus ``/v1`` endpoints that give gan-infer's own bytes, and a page at ``/``.

torch-free, like :mod:`ganforge.inference` (a test proves it); starlette and uvicorn come with the
``serve`` extra and are imported only by :mod:`ganforge.serve.app` and :mod:`ganforge.serve.cli`.

    gan-serve --model runs/latest/export/generator.onnx      # http://127.0.0.1:8000/

The pieces: :mod:`.config` (the policy: limits, batching, binding), :mod:`.model` (the sessions and
what they serve), :mod:`.batcher` (one worker thread a session, dynamic batching), :mod:`.protocol`
(the v2 tensors, JSON and binary), :mod:`.v1` (the convenience endpoints), :mod:`.metrics`,
:mod:`.app` (the routes) and :mod:`.cli`.
"""
