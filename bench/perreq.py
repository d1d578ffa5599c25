# perreq.py PORT PID SECONDS: see perreq.sh.
import socket,sys,os,time,glob
port=int(sys.argv[1]); pid=int(sys.argv[2]); dur=float(sys.argv[3])
def ops():
    s=socket.create_connection(("127.0.0.1",port))
    s.sendall(b"stats\r\n"); b=b""
    while not b.endswith(b"END\r\n"): b+=s.recv(65536)
    s.close()
    d={}
    for l in b.decode().split("\r\n"):
        p=l.split()
        if len(p)==3: d[p[1]]=p[2]
    return int(d["cmd_get"])+int(d["cmd_set"])
def cpu():
    f=open(f"/proc/{pid}/stat").read().rsplit(")",1)[1].split()
    return int(f[11]),int(f[12])  # utime stime ticks
def ctx():
    v=n=0; th=0
    for t in glob.glob(f"/proc/{pid}/task/*/status"):
        th+=1
        for l in open(t):
            if l.startswith("voluntary_ctxt_switches"): v+=int(l.split()[1])
            if l.startswith("nonvoluntary_ctxt_switches"): n+=int(l.split()[1])
    return v,n,th
def io():
    d={}
    for l in open(f"/proc/{pid}/io"):
        k,v=l.split(":"); d[k]=int(v)
    return d["syscr"],d["syscw"]
o0=ops();c0=cpu();x0=ctx();i0=io()
time.sleep(dur)
o1=ops();c1=cpu();x1=ctx();i1=io()
n=o1-o0; hz=os.sysconf('SC_CLK_TCK')
print(f"ops/s {n/dur:.0f} user {1e6*(c1[0]-c0[0])/hz/n:.2f}us sys {1e6*(c1[1]-c0[1])/hz/n:.2f}us per req; vol ctx {(x1[0]-x0[0])/n:.3f} invol {(x1[1]-x0[1])/n:.3f} threads {x1[2]}; syscr {(i1[0]-i0[0])/n:.2f} syscw {(i1[1]-i0[1])/n:.2f} per req")
