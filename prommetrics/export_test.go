package prommetrics

// Observe is the Collector's event hook, for the tests that feed it events no bulkhead
// would send.
var Observe = (*Collector).observe
