package dev.kiln.arch;

import com.tngtech.archunit.core.domain.Dependency;
import com.tngtech.archunit.core.domain.JavaClass;
import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import com.tngtech.archunit.lang.syntax.ArchRuleDefinition;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

import static com.tngtech.archunit.lang.syntax.ArchRuleDefinition.noClasses;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The layering of kiln-core, enforced. Packages form no cycles, except inside the eager core: a {@link dev.kiln.Tensor}
 * method calls its op in {@code dev.kiln.ops}, the op records an autograd node ({@code dev.kiln.autograd}) and
 * calls the backend interface ({@code dev.kiln.backend}), and all of them take and return Tensors. Backends
 * (cpu, cuda), nn, optim, data, io, train, amp and profile sit above that core and below each other without cycles.
 * Training and data code never reaches the CUDA driver or the raw library bindings. Text (tokenizers) uses only io.
 */
class LayeringTest {
    /** The one group of packages allowed to depend on each other both ways. */
    static final Set<String> EAGER_CORE = Set.of("dev.kiln", "dev.kiln.ops", "dev.kiln.autograd", "dev.kiln.backend");

    static JavaClasses classes;

    @BeforeAll static void importClasses() {
        classes = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPackages("dev.kiln");
    }

    /** Package to the packages its classes use (within dev.kiln, itself excluded). */
    static Map<String, Set<String>> packageGraph(JavaClasses classes) {
        Map<String, Set<String>> g = new TreeMap<>();
        for (JavaClass c : classes) {
            String from = c.getPackageName();
            g.computeIfAbsent(from, k -> new TreeSet<>());
            for (Dependency d : c.getDirectDependenciesFromSelf()) {
                String to = d.getTargetClass().getPackageName();
                if (to.startsWith("dev.kiln") && !to.equals(from)) g.get(from).add(to);
            }
        }
        return g;
    }

    /** The strongly connected components of more than one package (Tarjan's algorithm, iterative). */
    static List<Set<String>> cycles(Map<String, Set<String>> g) {
        Map<String, Integer> index = new HashMap<>(), low = new HashMap<>();
        Deque<String> stack = new ArrayDeque<>();
        Set<String> onStack = new TreeSet<>();
        List<Set<String>> out = new ArrayList<>();
        int[] counter = {0};
        for (String root : g.keySet()) {
            if (index.containsKey(root)) continue;
            Deque<Object[]> work = new ArrayDeque<>();   // {node, iterator over its successors}
            work.push(new Object[]{root, g.getOrDefault(root, Set.of()).iterator()});
            index.put(root, counter[0]);
            low.put(root, counter[0]++);
            stack.push(root);
            onStack.add(root);
            while (!work.isEmpty()) {
                Object[] top = work.peek();
                String v = (String) top[0];
                @SuppressWarnings("unchecked") var it = (java.util.Iterator<String>) top[1];
                if (it.hasNext()) {
                    String w = it.next();
                    if (!index.containsKey(w)) {
                        index.put(w, counter[0]);
                        low.put(w, counter[0]++);
                        stack.push(w);
                        onStack.add(w);
                        work.push(new Object[]{w, g.getOrDefault(w, Set.of()).iterator()});
                    } else if (onStack.contains(w)) {
                        low.put(v, Math.min(low.get(v), index.get(w)));
                    }
                } else {
                    work.pop();
                    if (!work.isEmpty()) {
                        String parent = (String) work.peek()[0];
                        low.put(parent, Math.min(low.get(parent), low.get(v)));
                    }
                    if (low.get(v).equals(index.get(v))) {
                        Set<String> comp = new TreeSet<>();
                        String w;
                        do {
                            w = stack.pop();
                            onStack.remove(w);
                            comp.add(w);
                        } while (!w.equals(v));
                        if (comp.size() > 1) out.add(comp);
                    }
                }
            }
        }
        return out;
    }

    @Test void theCycleFinderFindsACycle() {
        Map<String, Set<String>> g = Map.of("a", Set.of("b"), "b", Set.of("c"), "c", Set.of("a", "d"), "d", Set.of());
        assertEquals(List.of(Set.of("a", "b", "c")), cycles(new TreeMap<>(g)));
    }

    @Test void packagesFormNoCyclesOutsideTheEagerCore() {
        Map<String, Set<String>> g = packageGraph(classes);
        List<String> bad = new ArrayList<>();
        for (Set<String> comp : cycles(g)) {
            if (!EAGER_CORE.containsAll(comp)) {
                StringBuilder sb = new StringBuilder("cycle among " + comp + ":");
                for (String p : comp) {
                    Set<String> inside = new TreeSet<>(g.get(p));
                    inside.retainAll(comp);
                    sb.append("\n  ").append(p).append(" -> ").append(inside);
                }
                bad.add(sb.toString());
            }
        }
        assertEquals(List.of(), bad, "package cycles (only " + EAGER_CORE + " may depend on each other both ways)");
    }

    @Test void trainingAndDataNeverReachDriverCalls() {
        ArchRule rule = noClasses().that().resideInAnyPackage("dev.kiln.train..", "dev.kiln.data..", "dev.kiln.nn..", "dev.kiln.optim..")
                .should().dependOnClassesThat().haveSimpleName("Driver")
                .orShould().dependOnClassesThat().haveSimpleName("Nvrtc")
                .orShould().dependOnClassesThat().haveSimpleName("NativeLibrary")
                .orShould().dependOnClassesThat().haveSimpleName("Cudnn")
                .orShould().dependOnClassesThat().haveSimpleName("Cublas")
                .because("training and data code work through tensors, devices and the public CUDA API, not the bindings");
        rule.check(classes);
    }

    @Test void textStandsAloneBelowDataAndTraining() {
        ArchRuleDefinition.classes().that().resideInAPackage("dev.kiln.text..")
                .should().onlyDependOnClassesThat().resideInAnyPackage("dev.kiln.text..", "dev.kiln.io..", "java..")
                .because("tokenizers map text to ids with plain arrays: data, nn, train and the command line build on them, not the reverse")
                .check(classes);
    }

    @Test void theCoreDoesNotKnowItsBackends() {
        noClasses().that().resideInAnyPackage("dev.kiln", "dev.kiln.ops", "dev.kiln.autograd", "dev.kiln.backend")
                .should().dependOnClassesThat().resideInAnyPackage("dev.kiln.cpu..", "dev.kiln.cuda..", "dev.kiln.profile..",
                        "dev.kiln.nn..", "dev.kiln.train..", "dev.kiln.data..")
                .because("backends plug into the core (Backends finds them), and the core knows nothing of the layers above it")
                .check(classes);
    }
}
