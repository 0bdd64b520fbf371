package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// LifecycleRuleID returns the ID of the rule PutLifecycle manages for this
// Store's prefix: "hdc-export-retention-" and 16 hex digits of the
// prefix's SHA-256 (rule IDs are limited to 255 characters; prefixes are
// not). The second managed rule, for expired delete markers, has this ID
// and "-markers".
func (s *Store) LifecycleRuleID() string {
	sum := sha256.Sum256([]byte(s.prefix))
	return "hdc-export-retention-" + hex.EncodeToString(sum[:8])
}

// markersRuleID is the ID of the managed rule that removes expired delete
// markers.
func (s *Store) markersRuleID() string { return s.LifecycleRuleID() + markersSuffix }

const markersSuffix = "-markers"

// PutLifecycle installs, or updates, two bucket lifecycle rules on the
// Store's prefix. The first (LifecycleRuleID) expires objects days days
// after they were written, expires versions a day after they became
// noncurrent, and aborts multipart uploads left incomplete for a day. The
// second (LifecycleRuleID and "-markers") removes delete markers that no
// longer hide any version: S3 forbids ExpiredObjectDeleteMarker beside
// Days in one Expiration. On a bucket that was never versioned the version
// and marker actions have nothing to act on.
//
// It is a backstop, never the retention mechanism: lifecycle rules age
// objects by write time, not by failure date, and stores apply them lazily
// (AWS within about a day). The bucket's other rules are kept: the current
// configuration is read, the two managed rules replaced or added, and the
// whole written back. Two callers editing the same bucket's rules at once
// can lose one edit; run it from one place.
func (s *Store) PutLifecycle(ctx context.Context, days int) error {
	if days < 1 || days > math.MaxInt32 {
		return fmt.Errorf("s3 %s: days must be between 1 and %d, got %d", opLifecycle, math.MaxInt32, days)
	}
	rules, err := s.lifecycleRules(ctx, opLifecycle)
	if err != nil {
		return err
	}

	id, markersID := s.LifecycleRuleID(), s.markersRuleID()
	filter := func() *types.LifecycleRuleFilter {
		return &types.LifecycleRuleFilter{Prefix: aws.String(s.objectKey(""))}
	}
	kept := []types.LifecycleRule{{
		ID:         aws.String(id),
		Status:     types.ExpirationStatusEnabled,
		Filter:     filter(),
		Expiration: &types.LifecycleExpiration{Days: aws.Int32(int32(days))},
		NoncurrentVersionExpiration: &types.NoncurrentVersionExpiration{
			NoncurrentDays: aws.Int32(1),
		},
		AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{
			DaysAfterInitiation: aws.Int32(1),
		},
	}, {
		ID:         aws.String(markersID),
		Status:     types.ExpirationStatusEnabled,
		Filter:     filter(),
		Expiration: &types.LifecycleExpiration{ExpiredObjectDeleteMarker: aws.Bool(true)},
	}}
	for _, r := range rules {
		if rid := aws.ToString(r.ID); rid != id && rid != markersID {
			kept = append(kept, r)
		}
	}

	opts := append(s.callOpts[:len(s.callOpts):len(s.callOpts)], withContentMD5)
	_, err = s.client.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket:                 aws.String(s.bucket),
		LifecycleConfiguration: &types.BucketLifecycleConfiguration{Rules: kept},
	}, opts...)
	return mapErr(opLifecycle, s.objectKey(""), err)
}

// LifecycleRules describes, one line each, the bucket's lifecycle rules
// that apply to objects under the Store's prefix: those whose prefix
// filter contains the Store's prefix or lies within it. A line holds the
// rule's ID, its prefix and any other filter, its status, and its
// deleting actions, for example
//
//	hdc-export-retention-0123456789abcdef: prefix "lake/", Enabled: expire 30 days after write; noncurrent versions 1 day after; abort incomplete uploads after 1 day
//
// A bucket without lifecycle configuration has none.
func (s *Store) LifecycleRules(ctx context.Context) ([]string, error) {
	rules, err := s.lifecycleRules(ctx, opRules)
	if err != nil {
		return nil, err
	}
	root := s.objectKey("")
	var lines []string
	for _, r := range rules {
		prefix, others := ruleFilter(r)
		if !strings.HasPrefix(root, prefix) && !strings.HasPrefix(prefix, root) {
			continue
		}
		lines = append(lines, describeRule(r, prefix, others))
	}
	return lines, nil
}

// ruleFilter returns a rule's prefix, from its filter or the legacy Prefix
// field, and a description of its other filter conditions ("" for none).
func ruleFilter(r types.LifecycleRule) (prefix, others string) {
	prefix = aws.ToString(r.Prefix) //nolint:staticcheck // legacy rules still carry it
	f := r.Filter
	if f == nil {
		return prefix, ""
	}
	var conds []string
	tags := f.Tag
	if f.Prefix != nil {
		prefix = *f.Prefix
	}
	gt, lt := f.ObjectSizeGreaterThan, f.ObjectSizeLessThan
	var andTags []types.Tag
	if a := f.And; a != nil {
		if a.Prefix != nil {
			prefix = *a.Prefix
		}
		andTags = a.Tags
		if a.ObjectSizeGreaterThan != nil {
			gt = a.ObjectSizeGreaterThan
		}
		if a.ObjectSizeLessThan != nil {
			lt = a.ObjectSizeLessThan
		}
	}
	if tags != nil {
		andTags = append(andTags, *tags)
	}
	for _, t := range andTags {
		conds = append(conds, fmt.Sprintf("tag %s=%s", aws.ToString(t.Key), aws.ToString(t.Value)))
	}
	if gt != nil {
		conds = append(conds, fmt.Sprintf("size > %d", *gt))
	}
	if lt != nil {
		conds = append(conds, fmt.Sprintf("size < %d", *lt))
	}
	return prefix, strings.Join(conds, ", ")
}

// describeRule formats one rule for LifecycleRules.
func describeRule(r types.LifecycleRule, prefix, others string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: prefix %q", aws.ToString(r.ID), prefix)
	if others != "" {
		b.WriteString(", " + others)
	}
	fmt.Fprintf(&b, ", %s: ", r.Status)
	var acts []string
	if e := r.Expiration; e != nil {
		if e.Days != nil {
			acts = append(acts, plural("expire %d day%s after write", aws.ToInt32(e.Days)))
		}
		if e.Date != nil {
			acts = append(acts, "expire on "+e.Date.UTC().Format("2006-01-02"))
		}
		if aws.ToBool(e.ExpiredObjectDeleteMarker) {
			acts = append(acts, "remove expired delete markers")
		}
	}
	if n := r.NoncurrentVersionExpiration; n != nil {
		act := plural("noncurrent versions %d day%s after", aws.ToInt32(n.NoncurrentDays))
		if n.NewerNoncurrentVersions != nil {
			act += fmt.Sprintf(" (keeping %d newer)", *n.NewerNoncurrentVersions)
		}
		acts = append(acts, act)
	}
	if a := r.AbortIncompleteMultipartUpload; a != nil && a.DaysAfterInitiation != nil {
		acts = append(acts, plural("abort incomplete uploads after %d day%s", *a.DaysAfterInitiation))
	}
	if len(r.Transitions) > 0 || len(r.NoncurrentVersionTransitions) > 0 {
		acts = append(acts, "storage class transitions")
	}
	if len(acts) == 0 {
		acts = append(acts, "no deleting action")
	}
	b.WriteString(strings.Join(acts, "; "))
	return b.String()
}

// plural formats format, whose verbs are %d and %s, with n and an "s"
// unless n is 1.
func plural(format string, n int32) string {
	s := "s"
	if n == 1 {
		s = ""
	}
	return fmt.Sprintf(format, n, s)
}

// lifecycleRules returns the bucket's current lifecycle rules, or none.
// Errors name op.
func (s *Store) lifecycleRules(ctx context.Context, op string) ([]types.LifecycleRule, error) {
	out, err := s.client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{
		Bucket: aws.String(s.bucket),
	}, s.callOpts...)
	if err != nil {
		if code, _ := errorCode(err); code == "NoSuchLifecycleConfiguration" {
			return nil, nil
		}
		return nil, mapErr(op, s.objectKey(""), err)
	}
	return out.Rules, nil
}
