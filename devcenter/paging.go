package devcenter

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// MaxPages bounds the pages one list call follows. A list longer than
// this is an error, never a partial answer: the reconcile step would take
// a template missing from a partial list for one to create.
const MaxPages = 1000

// ErrBadPaging means a list's next-page link could not be followed
// safely: it pointed to another host (the bearer token would go there),
// repeated a page already read (a loop), or there were more than MaxPages.
var ErrBadPaging = errors.New("list paging cannot be followed safely")

// nextLinkKeys are the spellings of the next-page field, compared without
// letter case: the legacy analytics pages' "@nextLink", the sibling
// Partner Center APIs' "nextLink", and OData's "@odata.nextLink". The
// async API documents no paging at all (reference §1, §7.2, §7.3).
var nextLinkKeys = []string{"@nextLink", "nextLink", "@odata.nextLink"}

// list GETs path and every page its next-page links lead to, and calls
// each with every element of every page's data array, in order. A next
// link is resolved against the page that gave it; it must stay on the API
// host (scheme and host of BaseURL), must not repeat a page, and at most
// MaxPages are read. Any of these failing, or any page failing, fails the
// whole list (ErrBadPaging or the page's error): a list is whole or an
// error. Callers drop elements repeated across pages themselves (a page
// boundary moving while items are added can repeat one).
func (c *Client) list(ctx context.Context, path string, each func(json.RawMessage) error) error {
	base, err := url.Parse(c.cfg.BaseURL)
	if err != nil {
		return fmt.Errorf("devcenter: base url: %w", err)
	}
	endpoint := http.MethodGet + " " + strings.SplitN(path, "?", 2)[0]
	next := c.cfg.BaseURL + path
	seen := map[string]bool{}
	for pages := 0; next != ""; pages++ {
		if pages == MaxPages {
			return fmt.Errorf("devcenter: %s: %w: more than %d pages", endpoint, ErrBadPaging, MaxPages)
		}
		seen[next] = true
		var body map[string]json.RawMessage
		if err := c.callURL(ctx, http.MethodGet, next, endpoint, nil, &body); err != nil {
			return err
		}
		var items []json.RawMessage
		if data := fieldFold(body, "data"); len(data) > 0 && string(bytes.TrimSpace(data)) != "null" {
			if err := json.Unmarshal(data, &items); err != nil {
				return fmt.Errorf("devcenter: %s: data is not a list: %w", endpoint, err)
			}
		}
		for _, it := range items {
			if err := each(it); err != nil {
				return fmt.Errorf("devcenter: %s: %w", endpoint, err)
			}
		}
		link := ""
		for _, k := range nextLinkKeys {
			if raw := fieldFold(body, k); len(raw) > 0 {
				_ = json.Unmarshal(raw, &link) // null or a non-string: no link
				break
			}
		}
		if next, err = nextPage(base, next, strings.TrimSpace(link), seen); err != nil {
			return fmt.Errorf("devcenter: %s: %w", endpoint, err)
		}
	}
	return nil
}

// nextPage resolves link (from the page at current) and checks it (see
// list); "" for no further page.
func nextPage(base *url.URL, current, link string, seen map[string]bool) (string, error) {
	if link == "" {
		return "", nil
	}
	cur, _ := url.Parse(current)
	ref, err := url.Parse(link)
	if err != nil {
		return "", fmt.Errorf("%w: next link is not a URL", ErrBadPaging)
	}
	u := cur.ResolveReference(ref)
	if u.User != nil || !strings.EqualFold(u.Scheme, base.Scheme) || !strings.EqualFold(u.Host, base.Host) {
		// Name the host only: the rest of the link is the service's.
		return "", fmt.Errorf("%w: next link points to %s, not the API host %s (the access token is not sent there)", ErrBadPaging, u.Host, base.Host)
	}
	if seen[u.String()] {
		return "", fmt.Errorf("%w: next link repeats a page already read (a loop)", ErrBadPaging)
	}
	return u.String(), nil
}

// fieldFold returns the value of the key of m equal to name, ignoring
// letter case and surrounding spaces (the docs show " template"), or nil.
// An exact match wins over a folded one.
func fieldFold(m map[string]json.RawMessage, name string) json.RawMessage {
	if v, ok := m[name]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(strings.TrimSpace(k), name) {
			return v
		}
	}
	return nil
}
