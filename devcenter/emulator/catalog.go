package emulator

import (
	"fmt"
	"strings"
)

// bucketsPerView is the number of failure buckets in each view.
const bucketsPerView = 40

// catalog is what one view's rows refer to, fixed per seed: the account's
// driver products (IHV), drivers and failure buckets.
type catalog struct {
	apps    []string // ApplicationIds, 17-digit numbers (IHV only)
	drivers []driver
	buckets []bucket // most frequent first
}

// driver is a driver binary with its released versions.
type driver struct {
	name        string   // "contosonet.sys"
	base        string   // "contosonet"
	versions    []string // oldest first
	submissions []string // SubmissionId of each version (IHV only)
	app         string   // ApplicationId (IHV only)
	vendor      uint16   // PCI vendor id in HardwareId
	device      uint16   // PCI device id in HardwareId
}

// bucket is a failure bucket of one driver.
type bucket struct {
	driver    int // index into catalog.drivers
	name      string
	hash      string
	symbol    string
	eventType string
	mode      string
}

// weightedValue is a value chosen with probability proportional to weight.
type weightedValue[T any] struct {
	value  T
	weight int
}

// pickWeighted chooses one of xs by weight.
func pickWeighted[T any](s *stream, xs []weightedValue[T]) T {
	total := 0
	for _, x := range xs {
		total += x.weight
	}
	n := s.intn(total)
	for _, x := range xs {
		if n < x.weight {
			return x.value
		}
		n -= x.weight
	}
	return xs[len(xs)-1].value
}

// driverBases are the drivers of each view: the IHV account's own drivers,
// and the third-party drivers failing on the OEM account's devices.
var driverBases = [...][]string{
	viewIHV: {"contosonet", "contosowifi", "contosobt", "contosoaudio", "contosousb", "contosogfx", "contosocam", "contosostor"},
	viewOEM: {"fabrikamnet", "litwareaudio", "northwindgfx", "tailspinbt", "contosoec", "contosoacpi", "woodgrovestor", "prosewaretouch"},
}

var pciVendors = []uint16{0x8086, 0x10EC, 0x14E4, 0x1022, 0x10DE, 0x168C, 0x1B21, 0x17CB}

var driverFunctions = []string{
	"DispatchIoctl", "PowerDown", "HandleInterrupt", "DpcForIsr", "ReceiveIndication",
	"SendComplete", "ResetDevice", "QueryOid", "EvtDeviceD0Exit", "EvtIoRead",
	"MapBuffers", "ParseMacHeader", "CompleteRequest", "ProcessCommand",
}

// bucketPattern is a failure-name pattern; {drv}, {base} and {fn} stand for
// the driver file, its base name and a function.
type bucketPattern struct {
	name      string
	eventType string
	mode      string
}

var bucketPatterns = []bucketPattern{
	{"0x9F_3_POWER_DOWN_{drv}!unknown_function", "System crash", "Kernel"},
	{"AV_{base}!{fn}", "System crash", "Kernel"},
	{"0xD1_{base}!{fn}", "System crash", "Kernel"},
	{"0x133_DPC_{base}!{fn}", "System crash", "Kernel"},
	{"0x3B_c0000005_{base}!{fn}", "System crash", "Kernel"},
	{"0x7E_c0000005_{base}!{fn}", "System crash", "Kernel"},
	{"0x10D_5_{base}!{fn}", "System crash", "Kernel"},
	{"LKD_0x141_Tdr:6_IMAGE_{drv}_TIMEOUT", "Kernel", "Kernel"},
	{"LKD_0x193_{base}!{fn}", "Kernel", "Kernel"},
	{"APPLICATION_FAULT_c0000005_{base}.dll!{fn}", "Kernel", "User"},
}

// newCatalog builds view v's catalog for seed.
func newCatalog(seed uint64, v viewID) catalog {
	s := newStream(seed, tagCatalog, uint64(v))
	var c catalog
	seller := fmt.Sprintf("%08d", s.between(10_000_000, 39_999_999))
	if v == viewIHV {
		for range 3 {
			c.apps = append(c.apps, fmt.Sprintf("1%016d", s.next()%1e16))
		}
	}
	for i, base := range driverBases[v] {
		d := driver{
			name:   base + ".sys",
			base:   base,
			vendor: pciVendors[i%len(pciVendors)],
			device: uint16(s.between(0x1000, 0xFFFE)),
		}
		major, minor, build := s.between(1, 4), s.intn(6), s.intn(10)
		for range s.between(2, 3) {
			d.versions = append(d.versions, fmt.Sprintf("%d.%d.%d.0", major, minor, build))
			if s.chance(0.3) {
				minor, build = minor+1, 0
			} else {
				build += s.between(1, 4)
			}
		}
		if v == viewIHV {
			d.app = c.apps[i%len(c.apps)]
			for range d.versions {
				d.submissions = append(d.submissions, fmt.Sprintf("%s_%s_%d", seller, d.app, 1<<60+s.intn(1e9)))
			}
		}
		c.drivers = append(c.drivers, d)
	}
	seen := make(map[string]bool)
	for len(c.buckets) < bucketsPerView {
		di := len(c.buckets) % len(c.drivers)
		d := c.drivers[di]
		p, fn := pick(s, bucketPatterns), pick(s, driverFunctions)
		name := strings.NewReplacer("{drv}", d.name, "{base}", d.base, "{fn}", fn).Replace(p.name)
		if seen[name] {
			continue
		}
		seen[name] = true
		c.buckets = append(c.buckets, bucket{
			driver: di, name: name, hash: s.guid(), symbol: d.base + "!" + fn,
			eventType: p.eventType, mode: p.mode,
		})
	}
	return c
}

// osBuild is a Windows build with its friendly and release names.
type osBuild struct{ version, name, release string }

var osBuilds = []weightedValue[osBuild]{
	{osBuild{"10.0.19045.3803", "Windows 10", "22H2"}, 14},
	{osBuild{"10.0.19045.4291", "Windows 10", "22H2"}, 12},
	{osBuild{"10.0.19045.5131", "Windows 10", "22H2"}, 10},
	{osBuild{"10.0.22621.2861", "Windows 11", "22H2"}, 8},
	{osBuild{"10.0.22631.3880", "Windows 11", "23H2"}, 14},
	{osBuild{"10.0.22631.4460", "Windows 11", "23H2"}, 18},
	{osBuild{"10.0.26100.2314", "Windows 11", "24H2"}, 16},
	{osBuild{"10.0.26100.2605", "Windows 11", "24H2"}, 8},
}

var markets = []weightedValue[string]{
	{"US", 30}, {"DE", 10}, {"JP", 9}, {"GB", 8}, {"CN", 8}, {"FR", 7}, {"IN", 7},
	{"BR", 6}, {"CA", 5}, {"KR", 4}, {"AU", 3}, {"MX", 3},
}

var deviceTypes = []weightedValue[string]{{"PC", 90}, {"Unknown", 7}, {"IoT", 3}}

var architectures = []weightedValue[string]{{"x64", 85}, {"arm64", 10}, {"x86", 5}}

// cpusByArch are CPU names per architecture, as Windows reports them.
var cpusByArch = map[string][]string{
	"x64": {
		"Intel(R) Core(TM) i7-1185G7 @ 3.00GHz",
		"Intel(R) Core(TM) i5-10310U CPU @ 1.70GHz",
		"11th Gen Intel(R) Core(TM) i5-1135G7 @ 2.40GHz",
		"13th Gen Intel(R) Core(TM) i7-1365U",
		"Intel(R) Core(TM) Ultra 7 155H",
		"AMD Ryzen 7 5800U with Radeon Graphics",
		"AMD Ryzen 5 7535U with Radeon Graphics",
		"AMD Ryzen 9 7940HS w/ Radeon 780M Graphics",
	},
	"arm64": {
		"Snapdragon(R) X Elite - X1E78100 - Qualcomm(R) Oryon(TM) CPU",
		"Snapdragon(R) X Plus - X1P64100 - Qualcomm(R) Oryon(TM) CPU",
		"Microsoft SQ3 @ 3.0 GHz",
	},
	"x86": {
		"Intel(R) Celeron(R) N4020 CPU @ 1.10GHz",
		"Intel(R) Atom(TM) x5-Z8350 CPU @ 1.44GHz",
		"Intel(R) Pentium(R) Silver N5030 CPU @ 1.10GHz",
	},
}

var flightRings = []weightedValue[string]{
	{"Retail", 92}, {"Release Preview", 3}, {"Insider Slow", 3}, {"Insider Fast", 2},
}

var skuTypes = []weightedValue[string]{
	{"Professional", 45}, {"Core", 40}, {"Enterprise", 12}, {"Education", 3},
}

// ihvOEM is a device maker as the IHV view sees it.
type ihvOEM struct {
	name      string
	subVendor uint16 // PCI subsystem vendor id
	models    []string
}

var ihvOEMs = []weightedValue[ihvOEM]{
	{ihvOEM{"Contoso", 0x1028, []string{"C-122", "C-340", "Contoso Book 14"}}, 30},
	{ihvOEM{"Fabrikam", 0x103C, []string{"FX-15", "FX-17 Pro"}}, 25},
	{ihvOEM{"Litware", 0x17AA, []string{"LW 5000", "LW 7400 Slim"}}, 20},
	{ihvOEM{"Northwind", 0x1043, []string{"NW Book 14", "NW Book 16"}}, 12},
	{ihvOEM{"Tailspin", 0x1462, []string{"TS Mini 2"}}, 8},
	{ihvOEM{"Adventure Works", 0x1025, []string{"AW Gamer 16", "AW Go"}}, 5},
}

// oemModel is one of the OEM account's own models. One family name contains
// a comma, so CSV quoting is exercised.
type oemModel struct{ model, baseboard, family string }

var oemModels = []weightedValue[oemModel]{
	{oemModel{"101", "750-ABX", "ContosoPad"}, 25},
	{oemModel{"102", "750-ABY", "ContosoPad"}, 15},
	{oemModel{"201", "820-CDA", "Contoso Pad, 2nd Gen"}, 20},
	{oemModel{"202", "820-CDB", "Contoso Pad, 2nd Gen"}, 10},
	{oemModel{"301", "910-EFB", "Contoso Book"}, 20},
	{oemModel{"401", "615-GHA", "Contoso Studio"}, 10},
}

// oemSubVendor is the OEM account's PCI subsystem vendor id.
const oemSubVendor = 0x1B0A
