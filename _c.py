import time
from afnet_edge.bench.ledger import ledger, fused_bytes, bytes_by_stage, macs
from afnet_edge.bench.projection import trace_ops, count_bytes
for m, size, b in (("af_resnet50",224,1),("af_mobilenetv3",224,1),("tsm_resnet50",224,1)):
  for p in ("masked","compact-eager"):
    t=time.time()
    L=ledger(m,p,None,0.4,b,size,"fp16")
    tr=trace_ops(m,None,0.4,b,size,"fp16",plan=p)
    t1=time.time()-t
    print(m,p,"ledger",round(fused_bytes(L)/1e9,4),"traced",round(fused_bytes(tr)/1e9,4), round(t1,1),"s")
    print("   ", {k:round(v/1e6,1) for k,v in bytes_by_stage(L).items()})
    print("   ", {k:round(v/1e6,1) for k,v in bytes_by_stage(tr).items()})
    print("   macs", macs(L), macs(tr))
t=time.time()
c=count_bytes("af_resnet50","compact-eager",None,0.4,1,96,"fp32")
L=ledger("af_resnet50","compact-eager",None,0.4,1,96,"fp32")
print("counted", fused_bytes(c)/1e6, "ledger", fused_bytes(L)/1e6, time.time()-t)
import collections
agg=collections.Counter(); agl=collections.Counter()
for o in c:
    if o.cls!="elementwise": agg[o.op]+=o.bytes_read+o.bytes_written
for o in L: agl[o.op]+=o.bytes_read+o.bytes_written
for k in set(agg)|set(agl): print("  ",k, round(agg[k]/1e6,3), round(agl[k]/1e6,3))
