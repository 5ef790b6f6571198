package export

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/ferry-iot/ferry"
)

// Files returns the paths of the export files in dir, oldest first. The
// last one may still be being written.
func Files(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list export files: %w", err)
	}
	var out []string
	for _, e := range entries {
		if _, ok := parseFileName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out, nil
}

// ReadFile returns the records of one export file. A last line without its
// newline is what a crash in the middle of a write leaves, and it was never
// acknowledged: it is ignored. Any other line that does not decode is an
// error (EINVALID) naming the file and line.
func ReadFile(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read export file: %w", err)
	}
	defer f.Close()
	var out []Record
	br := bufio.NewReaderSize(f, 64<<10)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			return out, nil // b, if any, is a partial line
		}
		if err != nil {
			return nil, fmt.Errorf("read export file %s: %w", path, err)
		}
		var r Record
		if err := json.Unmarshal(bytes.TrimSuffix(b, []byte("\n")), &r); err != nil {
			return nil, ferry.WrapError(ferry.EINVALID, fmt.Sprintf("Export file %s line %d is not a valid record.", filepath.Base(path), line), err)
		}
		out = append(out, r)
	}
}

// ReadAll returns the records of every export file in dir, oldest file
// first, in the order they were written.
func ReadAll(dir string) ([]Record, error) {
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, p := range files {
		rs, err := ReadFile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}
