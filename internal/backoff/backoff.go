// Package backoff holds the one backoff rule tmcad's retry loops share.
package backoff

import "time"

// Delay returns base·2^(attempt-1), capped at limit: the wait before
// attempt number attempt+1 after attempt failures.
func Delay(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	if d > limit {
		d = limit
	}
	return d
}
