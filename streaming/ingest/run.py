"""Ingest a recording: split at gaps, write blocks in storage.md's format, then index them atomically.

Blocks are uploaded first and indexed in one transaction afterwards, so a failed ingest (unreadable
file, store down, database error) never leaves index rows pointing at missing blocks; blocks it
uploaded are deleted again. Ingesting the same file twice returns the package made the first time.
Damaged files (see ``recording``) and EDF+D files whose data records overlap in time are refused
before anything is written.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import logging
import math
import uuid
from collections.abc import Iterator
from pathlib import Path

from streaming.config import IngestSettings
from streaming.errors import IngestError
from streaming.index.database import IndexDatabase
from streaming.index.models import BlockRef, Channel
from streaming.ingest.recording import Recording, RecordingError, Segment, Signal
from streaming.metrics import INGEST_BLOCKS, INGEST_BYTES, INGEST_RECORDINGS
from streaming.storage.base import BlockStore, StoreUnavailable
from streaming.storage.codec import encode_block

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class IngestResult:
    package_id: str
    name: str
    channels: tuple[Channel, ...]
    blocks: int
    already_ingested: bool = False

    def summary(self) -> dict[str, object]:
        """A machine-readable summary (``streaming ingest --json``)."""
        return {
            "packageId": self.package_id,
            "name": self.name,
            "alreadyIngested": self.already_ingested,
            "blocks": self.blocks,
            "channels": [
                {
                    "id": c.id,
                    "name": c.name,
                    "rate": c.rate,
                    "unit": c.unit,
                    "start": c.start,
                    "end": c.end,
                }
                for c in self.channels
            ],
        }


@dataclasses.dataclass(frozen=True)
class PlannedBlock:
    """One block to write: which samples of which signal, and where it goes."""

    signal: Signal
    first_sample: int  # index into the signal's records laid back to back
    stop_sample: int
    ref: BlockRef


def new_package_id() -> str:
    return f"N:package:{uuid.uuid4()}"


def new_channel_id() -> str:
    return f"N:channel:{uuid.uuid4()}"


def block_key(channel_id: str, lo: int, hi: int) -> str:
    """The reference ingest's key naming, relative to the store's base URL."""
    return f"{channel_id}_{lo}_{hi}.bfts.gz"


def plan_blocks(
    channel_id: str, signal: Signal, segments: list[Segment], block_samples: int
) -> Iterator[PlannedBlock]:
    """Cut every segment into blocks of ``block_samples``; ranges are ``[first, last + 1 period)``."""
    period_us = 1e6 / signal.rate
    for segment in segments:
        first = segment.first_record * signal.samples_per_record
        stop = segment.stop_record * signal.samples_per_record
        for block_first in range(first, stop, block_samples):
            block_stop = min(block_first + block_samples, stop)
            lo = round(segment.start_us + (block_first - first) * period_us)
            hi = round(segment.start_us + (block_stop - first) * period_us)
            yield PlannedBlock(
                signal,
                block_first,
                block_stop,
                BlockRef(channel_id, lo, hi, block_key(channel_id, lo, hi), signal.rate),
            )


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def ingest_recording(
    path: str | Path,
    index: IndexDatabase,
    store: BlockStore,
    settings: IngestSettings,
    *,
    gap_threshold: float = 2.0,
    package_id: str | None = None,
    name: str | None = None,
    block_samples: int | None = None,
    public: bool = False,
) -> IngestResult:
    """Ingest one EDF/EDF+/BDF file; see the module docstring for the guarantees."""
    path = Path(path)
    try:
        sha256 = await asyncio.to_thread(file_sha256, path)
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc}") from exc
    existing = await index.find_package_by_source(sha256)
    if existing is not None:
        if package_id is not None and package_id != existing:
            raise IngestError(f"{path} was already ingested as {existing}, not {package_id}")
        package = await index.get_package(existing)
        assert package is not None
        return IngestResult(package.id, package.name, package.channels, 0, already_ingested=True)
    if package_id is not None and await index.get_package(package_id) is not None:
        raise IngestError(f"package {package_id} already exists with other data; choose another id")

    try:
        recording = await asyncio.to_thread(Recording, path)
    except RecordingError as exc:
        raise IngestError(str(exc)) from exc
    package_id = package_id or new_package_id()
    name = name or path.stem
    block_samples = block_samples or settings.block_samples

    channels: list[Channel] = []
    planned: list[PlannedBlock] = []
    for signal in recording.signals:
        channel_id = new_channel_id()
        segments = recording.segments(signal, gap_threshold)
        blocks = list(plan_blocks(channel_id, signal, segments, block_samples))
        _refuse_overlaps(recording, signal, blocks)
        planned.extend(blocks)
        channels.append(
            Channel(
                id=channel_id,
                package_id=package_id,
                name=signal.label,
                # EDF+D records may come in any order: the channel spans the earliest to the latest.
                start=min(b.ref.lo for b in blocks),
                end=max(b.ref.hi for b in blocks),
                unit=signal.unit,
                rate=signal.rate,
                type="CONTINUOUS",
            )
        )

    written: list[str] = []
    try:
        await _write_blocks(recording, planned, store, settings, written)
        await index.insert_package(package_id, name, sha256, channels, [b.ref for b in planned], public)
    except IngestError:
        INGEST_RECORDINGS.labels("failed").inc()
        await _delete_quietly(store, written)
        raise
    except Exception as exc:
        INGEST_RECORDINGS.labels("failed").inc()
        await _delete_quietly(store, written)
        raise IngestError(f"ingest of {path} failed, nothing was indexed: {exc}") from exc
    except BaseException:
        await _delete_quietly(store, written)
        raise
    INGEST_RECORDINGS.labels("ok").inc()
    log.info("ingested %s as %s: %d channels, %d blocks", path, package_id, len(channels), len(planned))
    return IngestResult(package_id, name, tuple(channels), len(planned))


def _refuse_overlaps(recording: Recording, signal: Signal, blocks: list[PlannedBlock]) -> None:
    """EDF+D data records that overlap in time cannot be indexed (storage.md: no overlapping blocks)."""
    ordered = sorted(blocks, key=lambda b: b.ref.lo)
    for before, after in itertools.pairwise(ordered):
        if after.ref.lo < before.ref.hi:
            first, second = ((b.ref.lo - recording.start_us) / 1e6 for b in (before, after))
            raise IngestError(
                f"{recording.path}: data records overlap in time in channel {signal.label}: data starting "
                f"at {second:+g} s begins before the data starting at {first:+g} s ends "
                f"({(before.ref.hi - recording.start_us) / 1e6:+g} s, from the header start time)"
            )


async def _write_blocks(
    recording: Recording,
    planned: list[PlannedBlock],
    store: BlockStore,
    settings: IngestSettings,
    written: list[str],
) -> None:
    """Encode and upload blocks, a bounded number at a time (memory stays a few blocks)."""
    slots = asyncio.Semaphore(settings.upload_concurrency)

    async def write(block: PlannedBlock) -> None:
        async with slots:
            data = await asyncio.to_thread(_encode, recording, block, settings.gzip_level)
            # Recorded before the write: a write that fails halfway may still have left an object.
            written.append(block.ref.location)
            await store.put(block.ref.location, data)
            INGEST_BLOCKS.inc()
            INGEST_BYTES.inc(len(data))

    batch = max(1, settings.upload_concurrency * 4)
    for offset in range(0, len(planned), batch):
        # gather, not a TaskGroup: let every write of the batch finish before cleaning up after a
        # failure, or a write still running in a thread could land after its block was deleted.
        outcomes = await asyncio.gather(
            *(write(block) for block in planned[offset : offset + batch]), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome


def _encode(recording: Recording, block: PlannedBlock, level: int) -> bytes:
    samples = recording.read(block.signal, block.first_sample, block.stop_sample)
    if samples.shape[0] != block.stop_sample - block.first_sample or not math.isfinite(float(samples.sum())):
        raise IngestError(f"{recording.path}: unexpected data in channel {block.signal.label}")
    return encode_block(samples, level)


async def _delete_quietly(store: BlockStore, keys: list[str]) -> None:
    for key in keys:
        try:
            await store.delete(key)
        except (StoreUnavailable, OSError) as exc:
            log.warning("could not remove orphan block %s: %s", key, exc)
