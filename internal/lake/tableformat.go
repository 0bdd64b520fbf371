package lake

// TableCheck is what a table format's retention step (see
// pipeline.TableFormat) found and did. It holds counts only, never keys or
// row content.
type TableCheck struct {
	Format string `json:"format"`
	Tables int    `json:"tables"`
	// Snapshots are the snapshots reachable when the step ended.
	Snapshots int `json:"snapshots"`
	// StaleFiles are data files of out-of-window dates that a reachable
	// snapshot's manifests referenced (live or as a delete entry) when the
	// step began; Dropped of them were removed from the tables.
	StaleFiles int `json:"stale_files"`
	Dropped    int `json:"dropped"`
	// SnapshotsExpired were removed from the tables' metadata.
	SnapshotsExpired int `json:"snapshots_expired"`
	// Orphans are objects under a table location that no reachable
	// metadata references (old metadata, manifests, manifest lists, data
	// files of superseded or failed runs); OrphansDeleted of them were
	// deleted.
	Orphans        int `json:"orphans"`
	OrphansDeleted int `json:"orphans_deleted"`
	// Left is what still referenced or stored an out-of-window date, or
	// stayed orphaned, when the step ended: zero is clean.
	Left int `json:"left"`
}
