"""A 2-D convolution in plain Python lists, no numpy: the slowest honest baseline.

x is a nested list (N, C, H, W), weight (F, C, k, k), bias a list (F,); stride 1,
zero padding ``padding``; cross-correlation as PyTorch. Returns nested lists (N, F, Ho, Wo).
"""


def conv2d_lists(x, weight, bias, padding):
    n_images, channels = len(x), len(x[0])
    height, width = len(x[0][0]), len(x[0][0][0])
    filters, k = len(weight), len(weight[0][0])
    out_h = height + 2 * padding - k + 1
    out_w = width + 2 * padding - k + 1
    out = []
    for n in range(n_images):
        image = x[n]
        maps = []
        for f in range(filters):
            kernel = weight[f]
            rows = []
            for i in range(out_h):
                row = []
                for j in range(out_w):
                    total = bias[f]
                    for c in range(channels):
                        plane, taps = image[c], kernel[c]
                        for di in range(k):
                            y = i + di - padding
                            if 0 <= y < height:
                                line, tap_row = plane[y], taps[di]
                                for dj in range(k):
                                    xx = j + dj - padding
                                    if 0 <= xx < width:
                                        total += line[xx] * tap_row[dj]
                    row.append(total)
                rows.append(row)
            maps.append(rows)
        out.append(maps)
    return out
