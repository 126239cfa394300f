# PyTorch side of ConvShapes.java (session 44): batch 1, two threads, conv + ReLU in eval, no gradients
import torch, time
torch.set_num_threads(2)
for c,h,o,k,s,p in [(3,224,64,7,2,3),(64,56,128,1,2,0),(64,56,64,3,1,1),(512,7,512,3,1,1)]:
    x=torch.randn(1,c,h,h); conv=torch.nn.Conv2d(c,o,k,s,p).eval()
    with torch.no_grad():
        for i in range(50): torch.relu(conv(x))
        t=time.perf_counter(); n=0
        while time.perf_counter()-t<1: torch.relu(conv(x)); n+=1
    ms=(time.perf_counter()-t)/n*1e3; oh=(h+2*p-k)//s+1
    print(f"c{c} h{h} o{o} k{k} s{s}: {ms:.3f} ms {2*o*oh*oh*c*k*k/ms/1e6:.0f} GFLOP/s")
