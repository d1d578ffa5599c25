package daemon

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mnemo-cache/mnemo/server"
)

// TestReadBufMemLimitSlowUploads: 200 connections each start a 512 KB set
// and send all but the last bytes. The memory holding their unfinished
// values stays within -o read_buf_mem_limit (measured by the server's own
// count and by the process heap); the connections past it get memcached's
// "SERVER_ERROR out of memory reading request" and are closed; a canary
// connection keeps getting correct answers throughout; and once the
// uploads go away the budget comes back.
func TestReadBufMemLimitSlowUploads(t *testing.T) {
	const (
		conns    = 200
		valueLen = 512 << 10
		limitMB  = 16
		limit    = limitMB << 20
	)
	d := start(t, "-m", "64", "-c", "1000", "-o", "read_buf_mem_limit="+strconv.Itoa(limitMB))
	if got := d.srv.Stats().ReadBufMemLimit; got != limit {
		t.Fatalf("server ReadBufMemLimit %d, want %d", got, limit)
	}
	addr := d.Addrs()[0].String()
	canary := dial(t, d)
	check := func(round int) {
		t.Helper()
		v := fmt.Sprintf("canary-%d", round)
		if got := canary.do(fmt.Sprintf("set canary 0 0 %d\r\n%s\r\n", len(v), v), anyLine); got[0] != "STORED\r\n" {
			t.Fatalf("canary set: %q", got)
		}
		want := []string{fmt.Sprintf("VALUE canary 0 %d\r\n", len(v)), v + "\r\n", "END\r\n"}
		if got := canary.do("get canary\r\n", isEnd); strings.Join(got, "") != strings.Join(want, "") {
			t.Fatalf("canary get: %q, want %q", got, want)
		}
	}
	check(0)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	// Every connection sends its command line first; the server decides
	// at once whether it will buffer the value.
	value := []byte(strings.Repeat("v", valueLen))
	type upload struct {
		c       net.Conn
		refused chan string // the reply line, if the server answered
	}
	ups := make([]upload, conns)
	var answered atomic.Int64
	var wg sync.WaitGroup
	for i := range ups {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(hangBound))
		ups[i] = upload{c: c, refused: make(chan string, 1)}
		if _, err := fmt.Fprintf(c, "set slow%d 0 0 %d\r\n", i, valueLen); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func(u upload) {
			defer wg.Done()
			line, err := bufio.NewReader(u.c).ReadString('\n')
			if err == nil || line != "" {
				answered.Add(1)
				u.refused <- line
			}
		}(ups[i])
		if i%50 == 0 {
			check(i)
		}
	}
	waitFor(t, "every upload accepted or refused", func() bool {
		return int(d.srv.Stats().ReadBufOOM)+countState(d, server.StateReadingNeed) == conns &&
			answered.Load() == int64(d.srv.Stats().ReadBufOOM)
	})
	st := d.srv.Stats()
	held := conns - int(st.ReadBufOOM)
	if held == 0 || st.ReadBufOOM == 0 {
		t.Fatalf("%d uploads held, %d refused: want both", held, st.ReadBufOOM)
	}
	for _, u := range ups {
		select {
		case line := <-u.refused:
			if line != "SERVER_ERROR out of memory reading request\r\n" {
				t.Fatalf("refused upload got %q", line)
			}
			u.refused <- line // keep the mark
		default:
			// Held: send all but the last 10 bytes of the value.
			if _, err := u.c.Write(value[:valueLen-10]); err != nil {
				t.Fatal(err)
			}
		}
	}
	check(1)
	// Wait until the server has read every byte sent to it.
	waitFor(t, "values read", func() bool {
		return d.srv.Stats().BytesRead >= uint64(held*(valueLen-10))
	})
	check(2)
	runtime.GC()
	var during runtime.MemStats
	runtime.ReadMemStats(&during)
	st = d.srv.Stats()
	t.Logf("held %d, refused %d; server: grown %d B, read buffers %d B; heap +%d KB",
		held, st.ReadBufOOM, st.ReadBufGrownBytes, st.ReadBufBytes, (int64(during.HeapAlloc)-int64(before.HeapAlloc))>>10)
	if st.ReadBufGrownBytes > limit {
		t.Errorf("grown read buffers %d B, over the %d B limit", st.ReadBufGrownBytes, limit)
	}
	// Pooled base buffers are bounded by the connections: 16 KiB each.
	if bound := uint64(limit + conns*server.DefaultReadBufferSize); st.ReadBufBytes > bound {
		t.Errorf("read buffers %d B, over %d B", st.ReadBufBytes, bound)
	}
	// Without the limit, the values alone would take conns*valueLen =
	// 100 MiB. Allow the limit plus 16 MiB for everything else.
	if grew := int64(during.HeapAlloc) - int64(before.HeapAlloc); grew > limit+16<<20 {
		t.Errorf("heap grew by %d MiB with the uploads pending; bound %d MiB", grew>>20, (limit+16<<20)>>20)
	}

	// The uploads go away: the budget comes back and a large set works.
	for _, u := range ups {
		u.c.Close()
	}
	wg.Wait()
	waitFor(t, "budget back", func() bool { return d.srv.Stats().ReadBufGrownBytes == 0 })
	if got := canary.do(fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", valueLen, value), anyLine); got[0] != "STORED\r\n" {
		t.Fatalf("large set after the uploads: %q", got)
	}
	check(3)
}

// TestReadBufMemLimitDefault: without -o read_buf_mem_limit the bound is
// tied to -m (at least four largest items); read_buf_mem_limit=0 means
// unlimited, as in memcached; stats settings shows both.
func TestReadBufMemLimitDefault(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{[]string{"-m", "64"}, 64 << 20},
		{[]string{"-m", "2", "-I", "1m"}, 4 << 20},
		{[]string{"-o", "read_buf_mem_limit=0"}, 0},
		{[]string{"-o", "read_buf_mem_limit=3"}, 3 << 20},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			d := start(t, tc.args...)
			if got := d.srv.Stats().ReadBufMemLimit; got != tc.want {
				t.Errorf("ReadBufMemLimit %d, want %d", got, tc.want)
			}
			lines := dial(t, d).do("stats settings\r\n", isEnd)
			want := "STAT read_buf_mem_limit_effective " + strconv.FormatInt(tc.want, 10) + "\r\n"
			if !strings.Contains(strings.Join(lines, ""), want) {
				t.Errorf("stats settings lacks %q", want)
			}
		})
	}
}

// countState counts the daemon's connections in state st.
func countState(d *Daemon, st server.State) int {
	n := 0
	d.srv.EachConn(func(ci server.ConnInfo) {
		if !ci.Listening && ci.State == st {
			n++
		}
	})
	return n
}

// waitFor polls cond until it holds; hangBound only turns a hang into a
// failure.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(hangBound); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: never happened", what)
		}
	}
}
