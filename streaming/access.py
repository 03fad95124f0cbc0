"""Who may read which package: private packages need a token (when JWT_KEY is set); /discover
serves only packages marked public, read-only, without a token."""

from __future__ import annotations

from streaming.auth import authorize
from streaming.errors import PackageNotFound
from streaming.index.catalog import PackageCatalog
from streaming.index.models import Package


async def open_package(
    packages: PackageCatalog, package_id: str, token: str | None, jwt_key: str, public_only: bool
) -> Package:
    """The package if the caller may read it; PackageNotFound, Unauthorized or Forbidden otherwise."""
    if not public_only:
        authorize(token, package_id, jwt_key)  # before the lookup: no probing for package ids
    package = await packages.get(package_id)
    if package is None or (public_only and not package.public):
        raise PackageNotFound(
            f"package {package_id} does not exist" + (" or is not public" if public_only else "")
        )
    return package
