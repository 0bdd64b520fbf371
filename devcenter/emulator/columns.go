package emulator

import "strings"

// viewID identifies one of the two report datasets.
type viewID int

const (
	viewIHV viewID = iota // IHVDriver
	viewOEM               // OEMDriver
)

// viewNames are the views as the API spells them.
var viewNames = [...]string{viewIHV: "IHVDriver", viewOEM: "OEMDriver"}

func (v viewID) String() string { return viewNames[v] }

// parseView accepts a view name, ignoring surrounding spaces (the docs'
// skeleton has " IHVDriver") and letter case.
func parseView(s string) (viewID, bool) {
	s = strings.TrimSpace(s)
	for v, name := range viewNames {
		if strings.EqualFold(s, name) {
			return viewID(v), true
		}
	}
	return 0, false
}

// columnID identifies a report column across both views.
type columnID int

const (
	colReportID columnID = iota
	colFailureDate
	colFailureDateTime
	colApplicationID
	colSubmissionID
	colFailureName
	colFailureHash
	colSymbol
	colOSVersion
	colOSName
	colEventType
	colMarket
	colDeviceType
	colDriverName
	colDriverVersion
	colArchitecture
	colOEMName
	colOEMModel
	colModel
	colBaseboard
	colModelFamily
	colFlightRing
	colMode
	colCPUName
	colOSSKUType
	colReleaseName
	colCabType
	colCabIDHash
	colCabExpirationTime
	colDeviceID
	colHardwareID
	colCabCollectionTime
	colEventCount
	numColumns
)

// columnNames are the column names as the API spells them (case-sensitive).
var columnNames = [numColumns]string{
	colReportID:          "ReportId",
	colFailureDate:       "FailureDate",
	colFailureDateTime:   "FailureDateTime",
	colApplicationID:     "ApplicationId",
	colSubmissionID:      "SubmissionId",
	colFailureName:       "FailureName",
	colFailureHash:       "FailureHash",
	colSymbol:            "Symbol",
	colOSVersion:         "OSVersion",
	colOSName:            "OSName",
	colEventType:         "EventType",
	colMarket:            "Market",
	colDeviceType:        "DeviceType",
	colDriverName:        "DriverName",
	colDriverVersion:     "DriverVersion",
	colArchitecture:      "Architecture",
	colOEMName:           "OEMName",
	colOEMModel:          "OEMModel",
	colModel:             "Model",
	colBaseboard:         "Baseboard",
	colModelFamily:       "ModelFamily",
	colFlightRing:        "FlightRing",
	colMode:              "Mode",
	colCPUName:           "CPUName",
	colOSSKUType:         "OSSKUType",
	colReleaseName:       "ReleaseName",
	colCabType:           "CabType",
	colCabIDHash:         "CabIdHash",
	colCabExpirationTime: "CabExpirationTime",
	colDeviceID:          "DeviceId",
	colHardwareID:        "HardwareId",
	colCabCollectionTime: "CabCollectionTime",
	colEventCount:        "EventCount",
}

// viewColumns are each view's columns in the canonical order of the official
// sample templates (section 5 of the reference).
var viewColumns = [...][]columnID{
	viewIHV: {
		colReportID, colFailureDate, colFailureDateTime, colApplicationID, colSubmissionID,
		colFailureName, colFailureHash, colSymbol, colOSVersion, colOSName, colEventType,
		colMarket, colDeviceType, colDriverName, colDriverVersion, colArchitecture,
		colOEMName, colOEMModel, colFlightRing, colMode, colCPUName, colOSSKUType,
		colReleaseName, colCabType, colCabIDHash, colCabExpirationTime, colDeviceID,
		colHardwareID, colCabCollectionTime, colEventCount,
	},
	viewOEM: {
		colReportID, colFailureDate, colFailureDateTime, colFailureName, colFailureHash,
		colSymbol, colOSVersion, colEventType, colMarket, colDeviceType, colDriverName,
		colDriverVersion, colArchitecture, colModel, colBaseboard, colModelFamily,
		colFlightRing, colMode, colCPUName, colOSSKUType, colReleaseName, colCabType,
		colCabIDHash, colCabExpirationTime, colDeviceID, colHardwareID,
		colCabCollectionTime, colEventCount,
	},
}

// IHVColumns and OEMColumns are the 30 IHVDriver and 28 OEMDriver column
// names in canonical order. They are copies: changing them does not affect
// the emulator.
var (
	IHVColumns = columnNamesOf(viewColumns[viewIHV])
	OEMColumns = columnNamesOf(viewColumns[viewOEM])
)

// columnsByName maps each view's column names to ids.
var columnsByName = [...]map[string]columnID{
	viewIHV: columnIndex(viewColumns[viewIHV]),
	viewOEM: columnIndex(viewColumns[viewOEM]),
}

func columnNamesOf(ids []columnID) []string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = columnNames[id]
	}
	return names
}

func columnIndex(ids []columnID) map[string]columnID {
	m := make(map[string]columnID, len(ids))
	for _, id := range ids {
		m[columnNames[id]] = id
	}
	return m
}
