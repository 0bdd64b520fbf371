// Package schema describes the report datasets (IHVDriver, OEMDriver) as
// data: their columns, the Parquet type of each, how a report file's header
// maps onto them, how values are parsed, and how rows are encoded to Parquet.
//
// Parquet types follow the lake's rules: dates as DATE, timestamps as INT64
// milliseconds adjusted to UTC, counts as INT64, identifiers as strings, no
// unsigned types, snake_case column names.
package schema

import (
	"fmt"
	"strings"
)

// Version is written into every Parquet file's metadata. Bump it when the
// mapping from report columns to Parquet columns changes incompatibly.
const Version = "1"

// Type is the logical type of a column in the lake.
type Type int

// The column types the lake uses.
const (
	String    Type = iota // UTF-8 string (BYTE_ARRAY, dictionary encoded)
	Int64                 // signed 64-bit integer
	Float64               // IEEE double
	Date                  // DATE (INT32 days since 1970-01-01)
	Timestamp             // TIMESTAMP(MILLIS, isAdjustedToUTC=true)
)

// String names the type as SQL does (used in DDL and messages).
func (t Type) String() string {
	switch t {
	case String:
		return "VARCHAR"
	case Int64:
		return "BIGINT"
	case Float64:
		return "DOUBLE"
	case Date:
		return "DATE"
	case Timestamp:
		return "TIMESTAMP"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

// Column is one documented report column.
type Column struct {
	Source string // the name in the report header, e.g. "FailureDateTime"
	Name   string // the lake's snake_case name, e.g. "failure_date_time"
	Type   Type
}

// Dataset is a report view and its documented columns.
type Dataset struct {
	View    string // "IHVDriver" or "OEMDriver"
	Columns []Column
}

// Column returns the documented column with the given source name
// (case-insensitive), or false.
func (d *Dataset) Column(source string) (Column, bool) {
	for _, c := range d.Columns {
		if strings.EqualFold(c.Source, source) {
			return c, true
		}
	}
	return Column{}, false
}

// DateSource is the column that partitions the lake.
const DateSource = "FailureDate"

func col(source, name string, t Type) Column { return Column{Source: source, Name: name, Type: t} }

// The documented columns shared by both views, by source name.
var common = map[string]Column{}

func init() {
	for _, c := range []Column{
		col("ReportId", "report_id", Int64),
		col("FailureDate", "failure_date", Date),
		col("FailureDateTime", "failure_date_time", Timestamp),
		col("ApplicationId", "application_id", String),
		col("SubmissionId", "submission_id", String),
		col("FailureName", "failure_name", String),
		col("FailureHash", "failure_hash", String),
		col("Symbol", "symbol", String),
		col("OSVersion", "os_version", String),
		col("OSName", "os_name", String),
		col("EventType", "event_type", String),
		col("Market", "market", String),
		col("DeviceType", "device_type", String),
		col("DriverName", "driver_name", String),
		col("DriverVersion", "driver_version", String),
		col("Architecture", "architecture", String),
		col("OEMName", "oem_name", String),
		col("OEMModel", "oem_model", String),
		col("Model", "model", String),
		col("Baseboard", "baseboard", String),
		col("ModelFamily", "model_family", String),
		col("FlightRing", "flight_ring", String),
		col("Mode", "mode", String),
		col("CPUName", "cpu_name", String),
		col("OSSKUType", "os_sku_type", String),
		col("ReleaseName", "release_name", String),
		col("CabType", "cab_type", String),
		col("CabIdHash", "cab_id_hash", String),
		col("CabExpirationTime", "cab_expiration_time", Timestamp),
		col("DeviceId", "device_id", String),
		col("HardwareId", "hardware_id", String),
		col("CabCollectionTime", "cab_collection_time", Timestamp),
		col("EventCount", "event_count", Int64),
	} {
		common[c.Source] = c
	}
	IHVDriver = dataset("IHVDriver", "ReportId, FailureDate, FailureDateTime, ApplicationId, SubmissionId, FailureName, "+
		"FailureHash, Symbol, OSVersion, OSName, EventType, Market, DeviceType, DriverName, DriverVersion, "+
		"Architecture, OEMName, OEMModel, FlightRing, Mode, CPUName, OSSKUType, ReleaseName, CabType, "+
		"CabIdHash, CabExpirationTime, DeviceId, HardwareId, CabCollectionTime, EventCount")
	OEMDriver = dataset("OEMDriver", "ReportId, FailureDate, FailureDateTime, FailureName, FailureHash, Symbol, OSVersion, "+
		"EventType, Market, DeviceType, DriverName, DriverVersion, Architecture, Model, Baseboard, "+
		"ModelFamily, FlightRing, Mode, CPUName, OSSKUType, ReleaseName, CabType, CabIdHash, "+
		"CabExpirationTime, DeviceId, HardwareId, CabCollectionTime, EventCount")
}

// The two documented views, with their canonical full projections.
var IHVDriver, OEMDriver *Dataset

func dataset(view, columns string) *Dataset {
	d := &Dataset{View: view}
	for _, name := range strings.Split(columns, ",") {
		d.Columns = append(d.Columns, common[strings.TrimSpace(name)])
	}
	return d
}

// Lookup returns the dataset of a view name (case-insensitive, surrounding
// space ignored: the docs' own example has " IHVDriver").
func Lookup(view string) (*Dataset, error) {
	switch strings.ToLower(strings.TrimSpace(view)) {
	case "ihvdriver":
		return IHVDriver, nil
	case "oemdriver":
		return OEMDriver, nil
	}
	return nil, fmt.Errorf("unknown view %q (want IHVDriver or OEMDriver)", view)
}
