package s3

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// LifecycleRuleID returns the ID of the rule PutLifecycle manages for this
// Store's prefix: "hdc-export-retention-" and 16 hex digits of the
// prefix's SHA-256 (rule IDs are limited to 255 characters; prefixes are not).
func (s *Store) LifecycleRuleID() string {
	sum := sha256.Sum256([]byte(s.prefix))
	return "hdc-export-retention-" + hex.EncodeToString(sum[:8])
}

// PutLifecycle installs, or updates, a bucket lifecycle rule on the Store's
// prefix that expires objects days days after they were written and aborts
// multipart uploads left incomplete for a day.
//
// It is a backstop, never the retention mechanism: lifecycle rules age
// objects by write time, not by failure date, and stores apply them lazily
// (AWS within about a day). The bucket's other rules are kept: the current
// configuration is read, the rule with LifecycleRuleID replaced or added,
// and the whole written back. Two callers editing the same bucket's rules
// at once can lose one edit; run it from one place.
func (s *Store) PutLifecycle(ctx context.Context, days int) error {
	if days < 1 || days > math.MaxInt32 {
		return fmt.Errorf("s3 %s: days must be between 1 and %d, got %d", opLifecycle, math.MaxInt32, days)
	}
	rules, err := s.lifecycleRules(ctx)
	if err != nil {
		return err
	}

	id := s.LifecycleRuleID()
	rule := types.LifecycleRule{
		ID:         aws.String(id),
		Status:     types.ExpirationStatusEnabled,
		Filter:     &types.LifecycleRuleFilter{Prefix: aws.String(s.objectKey(""))},
		Expiration: &types.LifecycleExpiration{Days: aws.Int32(int32(days))},
		AbortIncompleteMultipartUpload: &types.AbortIncompleteMultipartUpload{
			DaysAfterInitiation: aws.Int32(1),
		},
	}
	kept := []types.LifecycleRule{rule}
	for _, r := range rules {
		if aws.ToString(r.ID) != id {
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

// lifecycleRules returns the bucket's current lifecycle rules, or none.
func (s *Store) lifecycleRules(ctx context.Context) ([]types.LifecycleRule, error) {
	out, err := s.client.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{
		Bucket: aws.String(s.bucket),
	}, s.callOpts...)
	if err != nil {
		if code, _ := errorCode(err); code == "NoSuchLifecycleConfiguration" {
			return nil, nil
		}
		return nil, mapErr(opLifecycle, s.objectKey(""), err)
	}
	return out.Rules, nil
}
