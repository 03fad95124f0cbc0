"""The viewers' protobuf schema built with the official protobuf runtime, independent of our encoder.

The message classes are made from a FileDescriptorProto at import time, so no protoc step is needed.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto

_SCHEMA: dict[str, list[tuple[str, int, int, int, str | None]]] = {
    # name -> [(field, number, type, label, message type)]
    "Segment": [
        ("startTs", 1, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("source", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("lastUsed", 3, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("unit", 4, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("samplePeriod", 5, _F.TYPE_DOUBLE, _F.LABEL_OPTIONAL, None),
        ("requestedSamplePeriod", 6, _F.TYPE_DOUBLE, _F.LABEL_OPTIONAL, None),
        ("pageStart", 7, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("isMinMax", 8, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, None),
        ("unitM", 9, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("segmentType", 10, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("nrPoints", 11, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("data", 12, _F.TYPE_DOUBLE, _F.LABEL_REPEATED, None),
        ("pageEnd", 13, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("channelName", 14, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
    ],
    "Event": [
        ("source", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("pageStart", 2, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("pageEnd", 3, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("samplePeriod", 4, _F.TYPE_DOUBLE, _F.LABEL_OPTIONAL, None),
        ("points_per_event", 5, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("isResampled", 6, _F.TYPE_BOOL, _F.LABEL_OPTIONAL, None),
        ("data", 7, _F.TYPE_DOUBLE, _F.LABEL_REPEATED, None),
        ("times", 8, _F.TYPE_UINT64, _F.LABEL_REPEATED, None),
        ("spike_group", 9, _F.TYPE_UINT32, _F.LABEL_REPEATED, None),
    ],
    "Instruction": [
        ("command", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("argument", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
    ],
    "IngestSegment": [
        ("channelId", 1, _F.TYPE_STRING, _F.LABEL_OPTIONAL, None),
        ("startTime", 2, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("samplePeriod", 3, _F.TYPE_DOUBLE, _F.LABEL_OPTIONAL, None),
        ("data", 4, _F.TYPE_DOUBLE, _F.LABEL_REPEATED, None),
    ],
    "TimeSeriesMessage": [
        ("segment", 3, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".Segment"),
        ("event", 4, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".Event"),
        ("instruction", 5, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".Instruction"),
        ("ingestSegment", 6, _F.TYPE_MESSAGE, _F.LABEL_OPTIONAL, ".IngestSegment"),
        ("totalResponses", 7, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
        ("responseSequenceId", 8, _F.TYPE_UINT64, _F.LABEL_OPTIONAL, None),
    ],
}


def _build() -> dict[str, type]:
    file_proto = descriptor_pb2.FileDescriptorProto(name="timeseries_test.proto", syntax="proto3")
    for message_name, fields in _SCHEMA.items():
        message = file_proto.message_type.add(name=message_name)
        for name, number, kind, label, type_name in fields:
            field = message.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name
            if label == _F.LABEL_REPEATED and kind != _F.TYPE_MESSAGE:
                field.options.packed = True
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name)) for name in _SCHEMA}


_CLASSES = _build()
Segment = _CLASSES["Segment"]
TimeSeriesMessage = _CLASSES["TimeSeriesMessage"]


def decode_message(frame: bytes):
    """Parse one binary frame with the official protobuf runtime."""
    message = TimeSeriesMessage()
    message.ParseFromString(frame)
    return message
