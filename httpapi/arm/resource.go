package arm

import (
	"time"

	"github.com/ferry-iot/ferry"
)

// SystemData is ARM's systemData block.
type SystemData struct {
	CreatedBy          string     `json:"createdBy,omitempty"`
	CreatedByType      string     `json:"createdByType,omitempty"`
	CreatedAt          *time.Time `json:"createdAt,omitempty"`
	LastModifiedBy     string     `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string     `json:"lastModifiedByType,omitempty"`
	LastModifiedAt     *time.Time `json:"lastModifiedAt,omitempty"`
}

// NewSystemData converts the domain's SystemData; it returns nil when s
// records nothing, so that the block is left out.
func NewSystemData(s ferry.SystemData) *SystemData {
	if s.CreatedAt.IsZero() && s.LastModifiedAt.IsZero() {
		return nil
	}
	return &SystemData{
		CreatedBy: s.CreatedBy, CreatedByType: string(s.CreatedByType), CreatedAt: timePtr(s.CreatedAt),
		LastModifiedBy: s.LastModifiedBy, LastModifiedByType: string(s.LastModifiedByType), LastModifiedAt: timePtr(s.LastModifiedAt),
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// TimePtr returns a pointer to t in UTC, or nil for the zero time, for
// optional date-time properties.
func TimePtr(t time.Time) *time.Time { return timePtr(t) }

// Resource is the envelope of an ARM resource with properties of type P.
// Location and Tags are set for tracked resources only.
type Resource[P any] struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	ETag       string            `json:"etag,omitempty"`
	SystemData *SystemData       `json:"systemData,omitempty"`
	Properties P                 `json:"properties"`
}

// NewResource returns the envelope of the resource with the given ID.
func NewResource[P any](id ferry.ResourceID, sd ferry.SystemData, props P) Resource[P] {
	return Resource[P]{ID: id.String(), Name: id.Name(), Type: id.Type(), SystemData: NewSystemData(sd), Properties: props}
}

// List is ARM's list result: a page of values and the link to the next.
type List[T any] struct {
	Value    []T    `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}
