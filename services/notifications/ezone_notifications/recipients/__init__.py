"""Who can be alerted: the zone's board and each school's leadership team, as the plans service announces them."""
