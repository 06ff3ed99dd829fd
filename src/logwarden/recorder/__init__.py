"""The recorder: seal, group-commit, and only then let the chat relay."""

from logwarden.recorder.process import RecorderProcess
from logwarden.recorder.recorder import Recorder, SessionLog, UnsafeNoLogRecorder

__all__ = ["Recorder", "RecorderProcess", "SessionLog", "UnsafeNoLogRecorder"]
