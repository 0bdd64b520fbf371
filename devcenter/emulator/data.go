package emulator

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Shape of the synthetic data.
const (
	devicesPerRow = 5    // each view's device pool holds devicesPerRow × RowsPerDay devices
	cabsPerRow    = 3    // each date's cab pool holds RowsPerDay / cabsPerRow cabs
	noCabRate     = 0.15 // share of rows without a cab
	noSymbolRate  = 0.10 // share of rows without a symbol
	lateDays      = 3    // a run sees all of a date's rows from this many days after it
	cabRetention  = 30 * 24 * time.Hour
	rowTimeLayout = "2006-01-02 15:04:05"
)

// failureDateLayouts maps Options.DateFormat to the FailureDate layout.
var failureDateLayouts = map[string]string{
	"":         "2006-01-02",
	"iso":      "2006-01-02",
	"mdy":      "1/2/2006",
	"mmddyy":   "010206",
	"datetime": "2006-01-02 15:04:05", // applied to midnight: "2006-01-02 00:00:00"
}

// versionWeights favour newer driver versions (index = version, oldest first).
var versionWeights = [][]int{2: {1, 3}, 3: {1, 2, 4}}

// record holds one row's values by column id; columns outside the row's
// view stay empty.
type record = [numColumns]string

// dataset generates the synthetic rows. Row i of failure date D of a view
// is a pure function of (seed, view, D, i). It is immutable and safe for
// concurrent use.
type dataset struct {
	seed       uint64
	rowsPerDay int
	dateLayout string
	catalogs   [len(viewNames)]catalog
}

func newDataset(seed uint64, rowsPerDay int, dateFormat string) *dataset {
	d := &dataset{seed: seed, rowsPerDay: rowsPerDay, dateLayout: failureDateLayouts[dateFormat]}
	for v := range d.catalogs {
		d.catalogs[v] = newCatalog(seed, viewID(v))
	}
	return d
}

// rowsAtAge is how many of a failure date's rows a run made age days after
// that date reports: data arrives late, so it grows to the full RowsPerDay
// at lateDays. Rows are always a prefix of the date's row sequence.
func (d *dataset) rowsAtAge(age int) int {
	return (d.rowsPerDay*min(age, lateDays) + lateDays - 1) / lateDays
}

// cabPool is the number of distinct cabs per view and failure date.
func (d *dataset) cabPool() int { return max(1, d.rowsPerDay/cabsPerRow) }

// fillRow sets the columns of view v in out to row i of failure day `day`
// (days since 1970-01-01), except ReportId, which depends on the report.
func (d *dataset) fillRow(v viewID, day int64, i int, out *record) {
	cat := &d.catalogs[v]
	s := newStream(d.seed, tagRow, uint64(v), uint64(day), uint64(i))
	u := s.unit()
	b := &cat.buckets[int(u*u*float64(len(cat.buckets)))]
	drv := &cat.drivers[b.driver]
	ver := s.weighted(versionWeights[len(drv.versions)])
	dev := d.device(v, s.intn(d.rowsPerDay*devicesPerRow))
	date := dayStart(day)
	failedAt := date.Add(time.Duration(s.intn(86400)) * time.Second)

	out[colFailureDate] = date.Format(d.dateLayout)
	out[colFailureDateTime] = failedAt.Format(rowTimeLayout)
	out[colFailureName] = b.name
	out[colFailureHash] = b.hash
	out[colSymbol] = b.symbol
	if s.chance(noSymbolRate) {
		out[colSymbol] = ""
	}
	out[colOSVersion] = dev.os.version
	out[colEventType] = b.eventType
	out[colMarket] = dev.market
	out[colDeviceType] = dev.deviceType
	out[colDriverName] = drv.name
	out[colDriverVersion] = drv.versions[ver]
	out[colArchitecture] = dev.arch
	out[colFlightRing] = dev.flightRing
	out[colMode] = b.mode
	out[colCPUName] = dev.cpu
	out[colOSSKUType] = dev.sku
	out[colReleaseName] = dev.os.release
	out[colDeviceID] = dev.id
	out[colHardwareID] = fmt.Sprintf(`PCI\VEN_%04X&DEV_%04X&SUBSYS_%04X%04X`, drv.vendor, drv.device, dev.subDevice, dev.subVendor)
	out[colEventCount] = strconv.Itoa(1 + int(49*cube(s.unit())))

	switch v {
	case viewIHV:
		out[colApplicationID] = drv.app
		out[colSubmissionID] = drv.submissions[ver]
		out[colOSName] = dev.os.name
		out[colOEMName] = dev.oemName
		out[colOEMModel] = dev.oemModel
	case viewOEM:
		out[colModel] = dev.model.model
		out[colBaseboard] = dev.model.baseboard
		out[colModelFamily] = dev.model.family
	}

	if s.chance(noCabRate) {
		out[colCabType], out[colCabIDHash], out[colCabCollectionTime], out[colCabExpirationTime] = "", "", "", ""
		return
	}
	cab := d.cab(v, day, s.intn(d.cabPool()))
	out[colCabType] = cab.cabType
	out[colCabIDHash] = cab.id
	out[colCabCollectionTime] = cab.collected.Format(rowTimeLayout)
	out[colCabExpirationTime] = cab.collected.Add(cabRetention).Format(rowTimeLayout)
}

// device is a failing machine's profile.
type device struct {
	id         string
	market     string
	deviceType string
	arch       string
	cpu        string
	os         osBuild
	flightRing string
	sku        string
	oemName    string   // IHV view
	oemModel   string   // IHV view
	model      oemModel // OEM view
	subVendor  uint16
	subDevice  uint16
}

// device returns device idx of view v's pool; a pure function of (seed, v, idx).
func (d *dataset) device(v viewID, idx int) device {
	s := newStream(d.seed, tagDevice, uint64(v), uint64(idx))
	dev := device{
		id:         "s:" + strings.ToUpper(s.guid()),
		market:     pickWeighted(s, markets),
		deviceType: pickWeighted(s, deviceTypes),
		arch:       pickWeighted(s, architectures),
		os:         pickWeighted(s, osBuilds),
		flightRing: pickWeighted(s, flightRings),
		sku:        pickWeighted(s, skuTypes),
		subDevice:  uint16(s.between(1, 0x0FFF)),
	}
	dev.cpu = pick(s, cpusByArch[dev.arch])
	switch v {
	case viewIHV:
		oem := pickWeighted(s, ihvOEMs)
		dev.oemName, dev.oemModel, dev.subVendor = oem.name, pick(s, oem.models), oem.subVendor
	case viewOEM:
		dev.model, dev.subVendor = pickWeighted(s, oemModels), oemSubVendor
	}
	return dev
}

// cabInfo describes one collected cab.
type cabInfo struct {
	id        string // CabIdHash
	cabType   string
	collected time.Time
}

var cabTypes = []weightedValue[string]{{"MINI", 70}, {"KERNEL", 25}, {"FULL", 5}}

// cab returns cab c of view v's pool for failure day `day`.
func (d *dataset) cab(v viewID, day int64, c int) cabInfo {
	s := newStream(d.seed, tagCab, uint64(v), uint64(day), uint64(c))
	return cabInfo{
		id:        encodeCabID(d.seed, cabRef{view: v, day: day, index: c}),
		cabType:   pickWeighted(s, cabTypes),
		collected: dayStart(day).Add(time.Duration(s.intn(86400)) * time.Second),
	}
}

// dayNumber is t's UTC date as days since 1970-01-01 (t is after 1970).
func dayNumber(t time.Time) int64 { return t.Unix() / 86400 }

// dayStart is midnight UTC of day.
func dayStart(day int64) time.Time { return time.Unix(day*86400, 0).UTC() }

func cube(x float64) float64 { return x * x * x }
