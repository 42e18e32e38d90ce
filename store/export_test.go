package store

// HostIntervalSQL exports hostIntervalSQL for TestHostIntervalSQLMatchesGo.
const HostIntervalSQL = hostIntervalSQL
