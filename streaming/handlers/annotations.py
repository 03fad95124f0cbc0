"""POST /timespan: store annotations (protocol.md section 3)."""

from __future__ import annotations

from streaming.access import open_package
from streaming.annotations import layer_name, parse_timespan
from streaming.auth import authorize
from streaming.errors import InvalidRequest, PackageMissingChannels
from streaming.handlers.base import JsonHandler


class TimespanHandler(JsonHandler):
    async def post(self) -> None:
        layer = layer_name(self.get_query_argument("layer", None))
        items = parse_timespan(self.request.body)
        index, settings = self.services.index, self.services.settings
        sources = sorted({channel for item in items for channel in item["channels"]})
        packages = {source: await index.package_of_channel(source) for source in sources}
        unknown = [source for source, package in packages.items() if package is None]
        if unknown:
            raise PackageMissingChannels(f"{len(unknown)} channel(s) do not exist", unknown)
        if len(set(packages.values())) != 1:
            raise InvalidRequest("all items of one request must mark channels of the same package")
        package_id = next(iter(packages.values()))
        assert package_id is not None
        token = self.token()
        await open_package(self.services.packages, package_id, token, settings.auth.jwt_key, False)
        claims = authorize(token, package_id, settings.auth.jwt_key)
        ids = await index.insert_annotations(package_id, layer, str(claims.get("sub", "")), items)
        self.write_json({"package": package_id, "layer": layer, "ids": ids}, status=201)
