"""Units and calendar constants: the simulator works in seconds and bytes."""

MB = 1e6  # decimal megabyte, as devices and MB/s figures use
GB = 1e9
MIB = 1 << 20  # change-tracking chunks are binary
HOUR_S = 3600.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S
#: 1970-01-05 00:00 UTC, the first Monday of the epoch: weekly seasons are anchored here
MONDAY0_S = 4 * DAY_S
