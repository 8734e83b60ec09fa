"""L2: the media engine: RTP/SRTP streams, audio sources and sinks. Knows RTP, never SIP."""

from sippa.media.audio import (
    AudioSink,
    AudioSource,
    Echo,
    NullSink,
    SilenceSource,
    TeeSink,
    ToneSource,
    WavFileSource,
    WavRecorder,
)
from sippa.media.config import Direction, EngineSettings, StreamConfig
from sippa.media.engine import MediaEngine
from sippa.media.events import (
    DtmfReceived,
    MediaEvent,
    RemoteLatched,
    RtcpByeReceived,
    RtcpReport,
    SourceFinished,
    StreamStats,
)
from sippa.media.stream import MediaStream

__all__ = [
    "AudioSink",
    "AudioSource",
    "Direction",
    "DtmfReceived",
    "Echo",
    "EngineSettings",
    "MediaEngine",
    "MediaEvent",
    "MediaStream",
    "NullSink",
    "RemoteLatched",
    "RtcpByeReceived",
    "RtcpReport",
    "SilenceSource",
    "SourceFinished",
    "StreamConfig",
    "StreamStats",
    "TeeSink",
    "ToneSource",
    "WavFileSource",
    "WavRecorder",
]
