"""Every value a viewer receives equals an independent computation from the EDF (pyedflib + numpy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.client import ViewerClient
from tests.support.reference import expected_messages, read_edf
from tests.support.server import RunningServer

BLOCK = 10_000  # samples per stored block in the eeg_server fixture
PERIOD = 4000  # us at 250 Hz


@pytest.fixture(scope="module")
def reference(shared_eeg: Path):
    return read_edf(shared_eeg)


def _package(server: RunningServer):
    return next(iter(server.packages.values()))


def _request(package, start: int, end: int, pixel_width: float, channels=None) -> dict:
    chosen = channels if channels is not None else package.channels
    return {
        "packageId": package.package_id,
        "startTime": start,
        "endTime": end,
        "pixelWidth": pixel_width,
        "virtualChannels": [{"id": c.id, "name": c.name} for c in chosen],
    }


def _check_channel(messages, expected, channel, request) -> None:
    assert len(messages) == len(expected), f"{channel.name}: message count"
    for sequence, (message, want) in enumerate(zip(messages, expected, strict=True)):
        segment = message.segment
        assert message.totalResponses == len(expected)
        assert message.responseSequenceId == sequence, "messages must arrive in time order"
        assert segment.source == channel.id
        assert segment.channelName == channel.name
        assert segment.pageStart == request["startTime"] and segment.pageEnd == request["endTime"]
        assert segment.requestedSamplePeriod == request["pixelWidth"]
        assert segment.nrPoints == len(want.values)
        assert segment.isMinMax == want.is_min_max
        assert segment.samplePeriod == pytest.approx(want.sample_period)
        assert segment.unit == channel.unit
        np.testing.assert_allclose(np.array(segment.data), want.values, rtol=1e-12, atol=1e-9)
        if want.start_ts is not None:
            assert abs(segment.startTs - want.start_ts) <= 1


@pytest.mark.parametrize(
    "offset_s, seconds, pixel_width",
    [
        (0, 5, 5000),  # the README shape: raw (1.25 samples per pixel)
        (3, 60, 60_000),  # min/max, 15 samples per group, spans blocks
        (37.5, 100, 13_000),  # 3.25 samples/pixel: resampled in groups of 3, partial last group
        (0, 192, 192_000),  # the whole recording, 48 samples per group, every block
        (100.002, 0.5, 1000),  # window starting between samples, raw
        (39.9, 0.2, 12_000),  # spans the 40 s block boundary (10,000 samples = 40 s)
    ],
)
async def test_every_channel_matches_the_edf(eeg_server, reference, offset_s, seconds, pixel_width):
    package = _package(eeg_server)
    start = package.channels[0].start + int(offset_s * 1e6)
    request = _request(package, start, start + int(seconds * 1e6), pixel_width)
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        page = await client.page(request)
    finally:
        client.close()
    assert len(package.channels) == 30
    for channel in package.channels:
        expected = expected_messages(
            reference[channel.name], BLOCK, request["startTime"], request["endTime"], pixel_width
        )
        _check_channel(page.channel(channel.id), expected, channel, request)


async def test_window_starting_exactly_at_a_block_end(eeg_server, reference):
    package = _package(eeg_server)
    channel = package.channels[0]
    block_end = channel.start + BLOCK * PERIOD  # first sample of the second block
    request = _request(package, block_end, block_end + 2_000_000, 4000, [channel])
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        page = await client.page(request)
    finally:
        client.close()
    messages = page.channel(channel.id)
    assert len(messages) == 1, "the block that ends at startTime must not be included"
    assert messages[0].segment.startTs == block_end
    expected = expected_messages(
        reference[channel.name], BLOCK, request["startTime"], request["endTime"], 4000
    )
    _check_channel(messages, expected, channel, request)


async def test_window_ending_exactly_at_the_next_block_start(eeg_server, reference):
    package = _package(eeg_server)
    channel = package.channels[5]
    next_block = channel.start + 2 * BLOCK * PERIOD
    request = _request(package, next_block - 1_000_000, next_block, 4000, [channel])
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        page = await client.page(request)
    finally:
        client.close()
    messages = page.channel(channel.id)
    assert len(messages) == 1, "the block that starts at endTime must not be included"
    assert messages[0].segment.nrPoints == 250
    expected = expected_messages(
        reference[channel.name], BLOCK, request["startTime"], request["endTime"], 4000
    )
    _check_channel(messages, expected, channel, request)


async def test_window_outside_the_recording_gets_one_empty_segment(eeg_server):
    package = _package(eeg_server)
    channels = package.channels[:3]
    start = package.channels[0].end + 3_600_000_000
    request = _request(package, start, start + 5_000_000, 5000, channels)
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        page = await client.page(request)
    finally:
        client.close()
    for channel in channels:
        (message,) = page.channel(channel.id)
        assert message.totalResponses == 1 and message.responseSequenceId == 0
        assert message.segment.nrPoints == 0 and len(message.segment.data) == 0


@pytest.mark.parametrize("query_limit", [1, 2, 7, 100, 2000])
@pytest.mark.parametrize("pixel_width", [1000, 60_000])
async def test_query_limit_coarsens_without_cutting_the_page(eeg_server, reference, query_limit, pixel_width):
    package = _package(eeg_server)
    channels = package.channels[:3]
    start = channels[0].start + 30_000_000  # 20 s across the 40 s block boundary
    request = {
        **_request(package, start, start + 20_000_000, pixel_width, channels),
        "queryLimit": query_limit,
    }
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        page = await client.page(request)
    finally:
        client.close()
    for channel in channels:
        expected = expected_messages(
            reference[channel.name], BLOCK, request["startTime"], request["endTime"], pixel_width, query_limit
        )
        _check_channel(page.channel(channel.id), expected, channel, request)
        assert all(m.segment.nrPoints <= max(2, query_limit) for m in page.channel(channel.id))


async def test_the_older_channels_list_form_is_served_the_same(eeg_server, reference):
    """protocol.md: ``channels`` (a list of ids) instead of ``virtualChannels``; names are the labels."""
    package = _package(eeg_server)
    channels = package.channels[:5]
    start = channels[0].start + 38_000_000
    request = _request(package, start, start + 4_000_000, 4000, channels)
    plain = {k: v for k, v in request.items() if k != "virtualChannels"} | {
        "channels": [c.id for c in channels]
    }
    lookups = eeg_server.services.clock.counts.get("lookup", 0)
    client = await ViewerClient.connect(eeg_server.ws_url(package.package_id))
    try:
        await client.send(plain)
        page = await client.read_page([c.id for c in channels])
    finally:
        client.close()
    # One index query answered all five channels, across the block boundary at 40 s.
    assert eeg_server.services.clock.counts["lookup"] - lookups == 1
    for channel in channels:
        expected = expected_messages(reference[channel.name], BLOCK, start, start + 4_000_000, 4000)
        assert len(expected) == 2
        _check_channel(page.channel(channel.id), expected, channel, request)
