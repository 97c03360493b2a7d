"""The notifications service's tables (schema `notifications`)."""

from ezone_kit.db import service_metadata
from ezone_kit.directory import school_directory_table

metadata = service_metadata("notifications")
schools = school_directory_table(metadata)
