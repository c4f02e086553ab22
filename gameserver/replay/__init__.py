"""Record and replay of matches: file format, recorder, verification and playback.

``gameserver serve ... --record DIR`` records every room (:mod:`.recorder`); ``gameserver
replay FILE --verify | --serve`` checks or streams one (:mod:`.player`, :mod:`.serve`). The
file format is :mod:`.format` (reference: docs/REPLAY.md).
"""
