package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 limits on multipart uploads.
const (
	minPartSize = 5 << 20 // every part but the last
	maxPartSize = 5 << 30
	maxParts    = 10000
)

// S3Config configures an S3 store. Only Bucket is required.
type S3Config struct {
	// Bucket holds the objects. It must exist.
	Bucket string
	// Region is the bucket's region. Empty takes it from the standard AWS
	// configuration (AWS_REGION, shared config), else "us-east-1".
	Region string
	// Endpoint is the URL of an S3-compatible service, such as
	// "http://127.0.0.1:7070". Empty means AWS S3.
	Endpoint string
	// PathStyle addresses the bucket in the path (endpoint/bucket/key)
	// instead of the host name; most S3-compatible services need it.
	PathStyle bool
	// AccessKey and SecretKey are static credentials. Leave both empty to
	// use the standard AWS credential chain (environment, shared files,
	// instance roles).
	AccessKey string
	SecretKey string
	// Prefix is prepended to every key, so several stores can share a
	// bucket. Leading and trailing slashes are ignored; a non-empty Prefix
	// is followed by "/" in the bucket.
	Prefix string
	// MultipartThreshold is the object size above which Put uploads in
	// parts. Default 16 MiB.
	MultipartThreshold int64
	// PartSize is the size of each uploaded part. Default 8 MiB; at least
	// 5 MiB (S3's minimum). It grows if an object would need more than
	// 10,000 parts.
	PartSize int64
	// MaxAttempts bounds the tries of each request, the first included.
	// Default 5.
	MaxAttempts int
	// MaxBackoff caps the delay between tries. Default 20s.
	MaxBackoff time.Duration
}

// S3 is a Store in an S3 bucket, on AWS or any S3-compatible service.
//
// Requests are retried with exponential backoff and jitter on throttling,
// 5xx answers and network errors, up to MaxAttempts tries; what still fails
// is reported wrapping ErrTransient. Missing keys wrap ErrNotFound. Bad
// credentials, a missing bucket, access denied and other 4xx answers wrap
// ErrPermanent. Every error names the operation, key and bucket and keeps
// the SDK's error in its chain.
type S3 struct {
	client      *s3.Client
	transport   *http.Transport
	retryer     *retry.Standard
	bucket      string
	prefix      string
	threshold   int64
	partSize    int64
	maxAttempts int
}

var _ Store = (*S3)(nil)

// NewS3 returns a store for cfg. It sends no request; CheckBucket does.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	cfg, prefix, err := s3Defaults(cfg)
	if err != nil {
		return nil, err
	}
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3 bucket %q: load AWS config: %w", cfg.Bucket, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = "us-east-1"
	}
	retryer := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = cfg.MaxAttempts
		o.MaxBackoff = cfg.MaxBackoff
		// No client-side retry quota: every request gets its MaxAttempts.
		o.RateLimiter = ratelimit.None
	})
	// Our own transport (with the SDK's defaults) so Close can drop idle
	// connections.
	transport := awshttp.NewBuildableClient().GetTransport()
	httpClient := &http.Client{
		Transport: transport,
		// Like the SDK's client: hand redirects to the SDK, don't follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.Retryer = retryer
		o.RetryMaxAttempts = 0 // keep AWS_MAX_ATTEMPTS from overriding cfg
		o.HTTPClient = httpClient
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		// Checksums only where S3 requires them: many S3-compatible
		// servers reject the SDK's default streaming trailer checksums.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return &S3{
		client:      client,
		transport:   transport,
		retryer:     retryer,
		bucket:      cfg.Bucket,
		prefix:      prefix,
		threshold:   cfg.MultipartThreshold,
		partSize:    cfg.PartSize,
		maxAttempts: cfg.MaxAttempts,
	}, nil
}

// s3Defaults validates cfg, fills in defaults and returns the normalized
// key prefix.
func s3Defaults(cfg S3Config) (S3Config, string, error) {
	bad := func(format string, args ...any) (S3Config, string, error) {
		return cfg, "", fmt.Errorf("objstore: s3 config: %s: %w", fmt.Sprintf(format, args...), ErrPermanent)
	}
	if cfg.Bucket == "" {
		return bad("no bucket")
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return bad("set both access key and secret key, or neither")
	}
	if cfg.MultipartThreshold == 0 {
		cfg.MultipartThreshold = 16 << 20
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = 8 << 20
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 20 * time.Second
	}
	switch {
	case cfg.PartSize < minPartSize || cfg.PartSize > maxPartSize:
		return bad("part size %d outside [%d, %d]", cfg.PartSize, minPartSize, maxPartSize)
	case cfg.MultipartThreshold < 0 || cfg.MultipartThreshold > maxPartSize:
		return bad("multipart threshold %d outside [0, %d]", cfg.MultipartThreshold, maxPartSize)
	case cfg.MaxAttempts < 0:
		return bad("negative max attempts %d", cfg.MaxAttempts)
	case cfg.MaxBackoff < 0:
		return bad("negative max backoff %s", cfg.MaxBackoff)
	}
	prefix := strings.Trim(cfg.Prefix, "/")
	if prefix != "" {
		if err := CheckKey(prefix); err != nil {
			return bad("prefix: %v", err)
		}
		prefix += "/"
	}
	return cfg, prefix, nil
}

// Close releases idle network connections. The store stays usable.
func (s *S3) Close() error {
	s.transport.CloseIdleConnections()
	return nil
}

// CheckBucket verifies that the bucket exists and the credentials may
// list it, so a broker can fail at startup with a clear message. It lists
// (rather than HEADs) the bucket because only answers with a body say
// which of the two is wrong.
func (s *S3) CheckBucket(ctx context.Context) error {
	_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix), MaxKeys: aws.Int32(1),
	})
	return s.fail("check bucket", "", err)
}

// Put implements Store. Objects above the multipart threshold are uploaded
// in parts, one part in memory at a time; a failed upload is aborted.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := s.check(ctx, "put", key); err != nil {
		return err
	}
	if err := checkSize(key, size); err != nil {
		return err
	}
	if size > s.threshold {
		return s.putMultipart(ctx, key, r, size)
	}
	// Buffered so the SDK can sign it and rewind it for retries.
	data, err := readN(ctx, r, size)
	if err != nil {
		return fmt.Errorf("objstore: s3 put %q: read body: %w", key, err)
	}
	_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.prefix + key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(size),
	})
	return s.fail("put", key, err)
}

func (s *S3) putMultipart(ctx context.Context, key string, r io.Reader, size int64) (err error) {
	full := aws.String(s.prefix + key)
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: full,
	})
	if err != nil {
		return s.fail("put", key, err)
	}
	id := created.UploadId
	defer func() {
		if err != nil {
			err = s.abort(ctx, key, id, err)
		}
	}()
	partSize := max(s.partSize, (size+maxParts-1)/maxParts)
	var parts []types.CompletedPart
	for num, off := int32(1), int64(0); off < size; num++ {
		n := min(partSize, size-off)
		// A fresh buffer per part: the HTTP transport may still hold the
		// previous one when UploadPart returns.
		data, err := readN(ctx, r, n)
		if err != nil {
			return fmt.Errorf("objstore: s3 put %q: read body: %w", key, err)
		}
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(s.bucket),
			Key:           full,
			UploadId:      id,
			PartNumber:    aws.Int32(num),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(n),
		})
		if err != nil {
			return s.fail("put", key, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		off += n
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.bucket),
		Key:             full,
		UploadId:        id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	return s.fail("put", key, err)
}

// abort cancels a failed multipart upload so its parts do not linger (and
// cost) in the bucket. It runs even when ctx is done.
func (s *S3) abort(ctx context.Context, key string, id *string, cause error) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key), UploadId: id,
	})
	if err != nil {
		return fmt.Errorf("%w (abort multipart upload %s also failed: %v)", cause, aws.ToString(id), err)
	}
	return cause
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(ctx, "get", key); err != nil {
		return nil, err
	}
	data, _, err := s.get(ctx, "get", key, nil)
	return data, err
}

// GetRange implements Store.
func (s *S3) GetRange(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := s.check(ctx, "get_range", key); err != nil {
		return nil, err
	}
	if err := checkRange(key, off, length); err != nil {
		return nil, err
	}
	if length == 0 {
		// HTTP cannot ask for zero bytes; check the key and offset.
		return s.emptyRange(ctx, key, off)
	}
	rng := fmt.Sprintf("bytes=%d-", off)
	if length <= math.MaxInt64-off {
		rng = fmt.Sprintf("bytes=%d-%d", off, off+length-1)
	}
	data, whole, err := s.get(ctx, "get_range", key, &rng)
	if isInvalidRange(err) {
		// 416: off is at or past the end (or the object is empty).
		return s.emptyRange(ctx, key, off)
	}
	if err != nil {
		return nil, err
	}
	if whole {
		// The server ignored the Range header and sent everything.
		start, end, err := rangeOf(key, int64(len(data)), off, length)
		if err != nil {
			return nil, err
		}
		return data[start:end], nil
	}
	return data, nil
}

// emptyRange answers a GetRange that returns no bytes: an error if the key
// is missing or off lies beyond its end.
func (s *S3) emptyRange(ctx context.Context, key string, off int64) ([]byte, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key),
	})
	if err != nil {
		return nil, s.fail("get_range", key, err)
	}
	if _, _, err := rangeOf(key, aws.ToInt64(out.ContentLength), off, 0); err != nil {
		return nil, err
	}
	return []byte{}, nil
}

// get fetches key (or the range rng of it). whole reports that the answer
// is the whole object although a range was asked for. A body that breaks
// off mid-way is fetched again, with the retryer's backoff: the SDK
// retries requests, not the reading of their answers.
func (s *S3) get(ctx context.Context, op, key string, rng *string) (data []byte, whole bool, err error) {
	for attempt := 1; ; attempt++ {
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key), Range: rng,
		})
		if err != nil {
			return nil, false, s.fail(op, key, err)
		}
		data, err = readBody(out.Body, out.ContentLength)
		out.Body.Close()
		if err == nil {
			return data, rng != nil && out.ContentRange == nil, nil
		}
		err = fmt.Errorf("read body (try %d of %d): %w", attempt, s.maxAttempts, err)
		if ctx.Err() != nil || attempt >= s.maxAttempts {
			return nil, false, s.fail(op, key, err)
		}
		delay, derr := s.retryer.RetryDelay(attempt, err)
		if derr != nil {
			return nil, false, s.fail(op, key, err)
		}
		if err := sleep(ctx, delay); err != nil {
			return nil, false, s.fail(op, key, err)
		}
	}
}

// readBody reads an answer's body, which should hold n bytes if n is set.
func readBody(body io.Reader, n *int64) ([]byte, error) {
	if n == nil || *n < 0 {
		return io.ReadAll(body)
	}
	buf := make([]byte, *n)
	if _, err := io.ReadFull(body, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// sleep waits d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("objstore: s3 list %q: %w", prefix, err)
	}
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket), Prefix: aws.String(s.prefix + prefix),
	})
	var out []ObjectInfo
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, s.fail("list", prefix, err)
		}
		for _, o := range page.Contents {
			key := strings.TrimPrefix(aws.ToString(o.Key), s.prefix)
			if strings.HasSuffix(key, "/") {
				continue // a directory marker, never a key of ours
			}
			out = append(out, ObjectInfo{Key: key, Size: aws.ToInt64(o.Size), Modified: aws.ToTime(o.LastModified)})
		}
	}
	sortInfos(out) // S3 sorts by UTF-8 bytes already; other servers may not.
	return out, nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := s.check(ctx, "delete", key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key),
	})
	err = s.fail("delete", key, err)
	if errors.Is(err, ErrNotFound) {
		return nil // S3 answers 204 for a missing key; some servers 404
	}
	return err
}

func (s *S3) check(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("objstore: s3 %s %q: %w", op, key, err)
	}
	return CheckKey(key)
}
